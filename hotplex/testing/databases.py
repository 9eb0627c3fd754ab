"""Scratch databases for tests: SQLite files, or PostgreSQL databases on the test server.

PostgreSQL is the server at ``HOTPLEX_TEST_PG_ADMIN`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``). When it cannot be reached a test
skips, except with ``CI=true``, where it fails: a skipped PostgreSQL test in CI is a
failure.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

__all__ = ["PG_ADMIN_DSN", "pg_admin", "pg_unavailable", "pg_url", "scratch_database"]

PG_ADMIN_DSN = os.environ.get(
    "HOTPLEX_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def pg_unavailable(reason: str) -> None:
    """Skip, or with CI=true fail."""
    message = f"PostgreSQL at {PG_ADMIN_DSN.split('@')[-1]} is unavailable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: PostgreSQL tests must run)", pytrace=False)
    pytest.skip(message)


async def pg_admin(database: str | None = None) -> Any:
    """An asyncpg connection to the maintenance database, or to ``database``."""
    import asyncpg

    dsn = PG_ADMIN_DSN if database is None else PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + database
    try:
        return await asyncio.wait_for(asyncpg.connect(dsn), timeout=5.0)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        pg_unavailable(f"{type(exc).__name__}: {exc}")
        raise  # not reached: pg_unavailable raises


def pg_url(database: str) -> str:
    """The SQLAlchemy URL of ``database`` on the test server."""
    rest = PG_ADMIN_DSN.split("://", 1)[1].rsplit("/", 1)[0]
    return f"postgresql+asyncpg://{rest}/{database}"


@asynccontextmanager
async def scratch_database(backend: str, directory: Path) -> AsyncIterator[str]:
    """The URL of a fresh, empty database: a SQLite file under ``directory`` (not created
    yet), or a PostgreSQL database ``hotplex_test_<random>`` dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'data' / 'hotplex.db'}"
        return
    admin = await pg_admin()
    name = f"hotplex_test_{uuid.uuid4().hex[:12]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield pg_url(name)
    finally:
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', timeout=30)
        finally:
            await admin.close()
