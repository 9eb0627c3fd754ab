"""Applies :class:`~hotplex.storage.migration.Migration` records exactly once per database.

Applied versions are rows of ``hotplex_migrations(component, version, description,
applied_at)``. Several daemons may open one database at the same moment; the check and the
apply are serialised: on PostgreSQL under a session-level ``pg_advisory_lock``, on SQLite
inside ``BEGIN IMMEDIATE`` transactions (the database's write lock). Each migration runs in
its own transaction together with its ``hotplex_migrations`` row and is re-checked under the
lock, so a daemon that waited finds the work done and skips it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, inspect, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hotplex.errors import StorageError
from hotplex.storage.dialects import WRITE_OPTION
from hotplex.storage.migration import CORE_COMPONENT, Migration

__all__ = ["MIGRATIONS_TABLE", "PG_LOCK_KEY", "applied_versions", "apply_migrations", "ordered"]

log = logging.getLogger(__name__)

#: The advisory lock key taken on PostgreSQL while migrating ("hotplexm" as an int64).
PG_LOCK_KEY = int.from_bytes(b"hotplexm", "big")

_md = MetaData()
MIGRATIONS_TABLE = Table(
    "hotplex_migrations",
    _md,
    Column("component", String, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("description", Text, nullable=False),
    Column("applied_at", Float, nullable=False),
)


def ordered(migrations: Iterable[Migration]) -> list[Migration]:
    """Core's first, then by (component, version); a repeated (component, version) is an
    error."""
    seen: dict[tuple[str, int], Migration] = {}
    for migration in migrations:
        if migration.id in seen:
            raise StorageError(
                f"two migrations claim {migration.component} v{migration.version}: "
                f"{seen[migration.id].description!r} and {migration.description!r}"
            )
        seen[migration.id] = migration
    return sorted(seen.values(), key=lambda m: (m.component != CORE_COMPONENT, *m.id))


async def applied_versions(conn: AsyncConnection) -> set[tuple[str, int]]:
    """The (component, version) pairs recorded in the database (empty when none yet)."""
    exists = await conn.run_sync(lambda sync: inspect(sync).has_table(MIGRATIONS_TABLE.name))
    if not exists:
        return set()
    rows = await conn.execute(select(MIGRATIONS_TABLE.c.component, MIGRATIONS_TABLE.c.version))
    return {(str(c), int(v)) for c, v in rows}


async def apply_migrations(engine: AsyncEngine, migrations: Sequence[Migration]) -> list[Migration]:
    """Apply the migrations this database lacks, in order; returns the ones this call
    applied (another process may have applied the rest meanwhile)."""
    todo = ordered(migrations)
    async with engine.connect() as conn:
        done = await applied_versions(conn)
        await conn.rollback()
        _warn_newer(done, todo)
        pending = [m for m in todo if m.id not in done]
        if not pending:
            return []
        await conn.execution_options(**{WRITE_OPTION: True})
        postgres = engine.dialect.name == "postgresql"
        if postgres:
            await conn.exec_driver_sql(f"SELECT pg_advisory_lock({PG_LOCK_KEY})")
            await conn.commit()
        try:
            async with conn.begin():
                await conn.run_sync(lambda sync: _md.create_all(sync))
            return [m for m in pending if await _apply_one(conn, m)]
        finally:
            if postgres:
                await _unlock(conn)


async def _apply_one(conn: AsyncConnection, migration: Migration) -> bool:
    table = MIGRATIONS_TABLE
    async with conn.begin():
        found = await conn.scalar(
            select(table.c.version).where(
                table.c.component == migration.component, table.c.version == migration.version
            )
        )
        if found is not None:
            return False
        started = time.monotonic()
        try:
            await conn.run_sync(migration.upgrade)
        except Exception as exc:
            raise StorageError(f"migration {migration} failed: {exc}") from exc
        await conn.execute(
            table.insert().values(
                component=migration.component,
                version=migration.version,
                description=migration.description,
                applied_at=time.time(),
            )
        )
    log.info("applied migration %s in %.2fs", migration, time.monotonic() - started)
    return True


async def _unlock(conn: AsyncConnection) -> None:
    try:
        if conn.in_transaction():
            await conn.rollback()
        await conn.exec_driver_sql(f"SELECT pg_advisory_unlock({PG_LOCK_KEY})")
        await conn.commit()
    except Exception:  # the lock ends with the session anyway
        log.warning("could not release the migration lock", exc_info=True)


def _warn_newer(done: set[tuple[str, int]], known: Sequence[Migration]) -> None:
    latest: dict[str, int] = {}
    for migration in known:
        latest[migration.component] = max(latest.get(migration.component, 0), migration.version)
    for component, version in sorted(done):
        if component in latest and version > latest[component]:
            log.warning(
                "the database has %s migration v%d, newer than this HotPlex knows (v%d)",
                component,
                version,
                latest[component],
            )
