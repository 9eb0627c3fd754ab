"""Building the async engine for a storage URL: SQLite pragmas and transaction control,
PostgreSQL JSON handling.

SQLite (``sqlite+aiosqlite:///path``): the driver's own implicit BEGIN is switched off
(``isolation_level = None``) and SQLAlchemy's ``begin`` event emits ``BEGIN`` for reads and
``BEGIN IMMEDIATE`` for connections marked with the execution option ``hotplex_write``
(the write lock is taken at BEGIN, so a busy database waits ``busy_timeout`` instead of
failing with "database is locked" when a read transaction tries to upgrade). Each connection
gets ``busy_timeout``, ``synchronous`` and ``foreign_keys = ON``; ``journal_mode = WAL`` is
set once by :meth:`SqlStorage.open` (it is stored in the file).

The URL may carry ``?synchronous=normal|full`` (removed before SQLAlchemy sees it). The
PostgreSQL driver is the ``postgres`` extra; a URL whose driver is missing is a ConfigError
that says so.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hotplex.errors import ConfigError

__all__ = [
    "AUTOCOMMIT_OPTION",
    "DEFAULT_BUSY_TIMEOUT",
    "DEFAULT_SYNCHRONOUS",
    "WRITE_OPTION",
    "build_engine",
    "parse_url",
]

#: Execution option marking a connection whose transactions write (SQLite: BEGIN IMMEDIATE).
WRITE_OPTION = "hotplex_write"
#: Execution option for statements that must run outside a transaction (SQLite pragmas).
AUTOCOMMIT_OPTION = "hotplex_autocommit"

DEFAULT_SYNCHRONOUS = "FULL"
DEFAULT_BUSY_TIMEOUT = 10.0
SYNCHRONOUS_VALUES = ("OFF", "NORMAL", "FULL", "EXTRA")
DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
#: the extra of the ``hotplex`` distribution that installs a driver core does not depend on
DRIVER_EXTRAS = {"asyncpg": "postgres"}
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(value: str, *, nul: bool) -> str:
    """``value`` with lone surrogates (unencodable as UTF-8) and, when ``nul``, NUL
    characters replaced by U+FFFD."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = _SURROGATE.sub("\ufffd", value)
    if nul and "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    return value


def _clean(value: Any, nul: bool) -> Any:
    if isinstance(value, str):
        return clean_text(value, nul=nul)
    if isinstance(value, dict):
        return {_clean(k, nul): _clean(v, nul) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v, nul) for v in value]
    return value


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def dumps(value: Any) -> str:
    """JSON for SQLite's JSON columns: compact, UTF-8 kept, unknown objects as strings, lone
    surrogates (which UTF-8 cannot encode) as U+FFFD."""
    out = _dumps(value)
    try:
        out.encode("utf-8")
    except UnicodeEncodeError:
        out = _dumps(_clean(value, nul=False))
    return out


def dumps_pg(value: Any) -> str:
    """JSON PostgreSQL's JSONB accepts: as :func:`dumps`, and NUL (``\\u0000``, which
    PostgreSQL text cannot hold) as U+FFFD."""
    out = _dumps(value)
    try:
        out.encode("utf-8")
    except UnicodeEncodeError:
        return _dumps(_clean(value, nul=True))
    if "\\u0000" in out:
        out = _dumps(_clean(value, nul=True))
    return out


def parse_url(url: str) -> tuple[URL, str | None]:
    """The SQLAlchemy URL without our own query options, and ``synchronous`` if given."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    driver = DRIVERS.get(backend)
    if driver is None or parsed.get_driver_name() != driver:
        raise ConfigError(
            f"storage.url: unsupported URL scheme {parsed.drivername!r} "
            "(use sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db)",
            path="storage.url",
        )
    _require_driver(driver)
    synchronous = parsed.query.get("synchronous")
    if isinstance(synchronous, tuple):
        synchronous = synchronous[-1]
    if synchronous is not None:
        if backend != "sqlite":
            raise ConfigError("storage.url: synchronous applies to SQLite only", path="storage.url")
        synchronous = synchronous.upper()
        if synchronous not in SYNCHRONOUS_VALUES:
            raise ConfigError(
                f"storage.url: synchronous={synchronous.lower()!r} is not one of "
                f"{', '.join(v.lower() for v in SYNCHRONOUS_VALUES)}",
                path="storage.url",
            )
        parsed = parsed.difference_update_query(["synchronous"])
    return parsed, synchronous


def _require_driver(driver: str) -> None:
    extra = DRIVER_EXTRAS.get(driver)
    if extra is None:
        return
    try:
        if importlib.util.find_spec(driver) is not None:
            return
    except (ImportError, ValueError):
        pass
    raise ConfigError(
        f"storage.url: this database needs the {driver} driver, which is not installed: "
        f"pip install 'hotplex[{extra}]'",
        path="storage.url",
    )


def sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL, or None for an in-memory database."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def build_engine(
    url: URL,
    *,
    synchronous: str = DEFAULT_SYNCHRONOUS,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
) -> AsyncEngine:
    """An AsyncEngine for ``url`` (from :func:`parse_url`) with HotPlex's settings."""
    if url.get_backend_name() == "postgresql":
        return create_async_engine(url, json_serializer=dumps_pg, pool_pre_ping=True)
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, json_serializer=dumps)
    _install_sqlite_hooks(engine, synchronous=synchronous, busy_timeout=busy_timeout)
    return engine


def _install_sqlite_hooks(engine: AsyncEngine, *, synchronous: str, busy_timeout: float) -> None:
    pragmas = (
        f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}",
        f"PRAGMA synchronous = {synchronous}",
        "PRAGMA foreign_keys = ON",
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # take transaction control away from the driver: SQLAlchemy's begin event emits it
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get(AUTOCOMMIT_OPTION):
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(WRITE_OPTION) else "BEGIN")
