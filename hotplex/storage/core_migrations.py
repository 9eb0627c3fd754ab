"""Core's own migrations, component ``core``. Append new versions; never edit applied ones."""

from __future__ import annotations

from sqlalchemy import Connection, Float, Index, MetaData, text

from hotplex.storage.migration import CORE_COMPONENT, Migration
from hotplex.storage.schema import define_v1, define_v3, define_v4

__all__ = ["CORE_MIGRATIONS"]


def _upgrade_v1(conn: Connection) -> None:
    md = MetaData()
    define_v1(md)
    md.create_all(conn)


def _upgrade_v2(conn: Connection) -> None:
    md = MetaData()
    define_v1(md)
    float_type = Float().compile(dialect=conn.dialect)
    conn.execute(text(f"ALTER TABLE events ADD COLUMN stored_at {float_type}"))
    conn.execute(text("UPDATE events SET stored_at = ts"))
    table = md.tables["events"]
    Index("ix_events_turn", table.c.session_id, table.c.turn_id).create(conn)


def _upgrade_v3(conn: Connection) -> None:
    md = MetaData()
    define_v3(md)
    md.create_all(conn)


def _upgrade_v4(conn: Connection) -> None:
    md = MetaData()
    define_v4(md)
    md.create_all(conn)


CORE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        CORE_COMPONENT,
        1,
        "sessions, events, inbound, turns, approvals and audit",
        _upgrade_v1,
    ),
    Migration(
        CORE_COMPONENT,
        2,
        "events.stored_at (backfilled from ts) and index ix_events_turn",
        _upgrade_v2,
    ),
    Migration(CORE_COMPONENT, 3, "leases", _upgrade_v3),
    Migration(CORE_COMPONENT, 4, "outbox", _upgrade_v4),
)
