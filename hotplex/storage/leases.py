"""Leases: a named lock with one holder at a time and an expiry, kept in core's ``leases``
table so that it holds across processes and daemons sharing one database.

Each operation is one atomic statement, so two processes racing for a lease cannot both win:

- acquire: ``INSERT ... ON CONFLICT (name) DO UPDATE ... WHERE`` the stored lease expired or
  is the caller's own, ``RETURNING`` the row only when it was written (PostgreSQL takes the
  conflicting row's lock; SQLite runs writers one at a time);
- renew: ``UPDATE`` the caller's unexpired lease;
- release: ``DELETE`` the caller's lease.

Times are Unix seconds from the storage's clock (``time.time`` unless a test gives another):
holders on different hosts need clocks that agree to well within the lease's ttl.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert

from hotplex.storage.schema import leases

__all__ = ["acquire", "check_lease_args", "release", "renew"]


def check_lease_args(name: str, holder: str, ttl: float | None = None) -> None:
    """Raise ValueError for an empty name or holder or a ttl that is not positive."""
    if not name or not holder:
        raise ValueError("a lease needs a non-empty name and holder")
    if ttl is not None and not ttl > 0:
        raise ValueError(f"a lease's ttl must be > 0 seconds, not {ttl!r}")


async def acquire(
    conn: AsyncConnection, insert: Insert, name: str, holder: str, ttl: float, now: float
) -> bool:
    """Take ``name`` for ``holder`` until ``now + ttl`` when it is free, expired or already
    ``holder``'s (then its expiry moves); False when someone else holds it."""
    stmt: Any = insert.values(name=name, holder=holder, expires_at=now + ttl, acquired_at=now)
    excluded = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={
            "holder": excluded.holder,
            "expires_at": excluded.expires_at,
            "acquired_at": excluded.acquired_at,
        },
        where=(leases.c.expires_at <= now) | (leases.c.holder == excluded.holder),
    ).returning(leases.c.holder)
    result = await conn.execute(stmt)
    return result.first() is not None


async def renew(conn: AsyncConnection, name: str, holder: str, ttl: float, now: float) -> bool:
    """Move the expiry of ``holder``'s unexpired lease to ``now + ttl``; False when the
    lease is not held by ``holder`` (never taken, released, expired or taken over)."""
    stmt = (
        update(leases)
        .where(leases.c.name == name, leases.c.holder == holder, leases.c.expires_at > now)
        .values(expires_at=now + ttl)
        .returning(leases.c.name)
    )
    return (await conn.execute(stmt)).first() is not None


async def release(conn: AsyncConnection, name: str, holder: str) -> bool:
    """Give ``holder``'s lease up (expired or not); False when ``holder`` did not hold it."""
    stmt = (
        delete(leases)
        .where(leases.c.name == name, leases.c.holder == holder)
        .returning(leases.c.name)
    )
    return (await conn.execute(stmt)).first() is not None
