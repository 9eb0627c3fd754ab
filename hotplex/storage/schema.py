"""Core's tables, as SQLAlchemy Core ``Table`` objects (the head schema) and as each
migration created them.

The head schema is built by replaying the same definitions the migrations use
(:func:`define_v1`, :func:`define_v2`, :func:`define_v3`, then :func:`define_v4`), so
queries and migrations cannot drift apart; a test compares the migrated database against
:data:`metadata`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

from hotplex.storage.dialects import clean_text

__all__ = [
    "CORE_TABLES",
    "SafeText",
    "approvals",
    "audit",
    "define_v1",
    "define_v2",
    "define_v3",
    "define_v4",
    "events",
    "inbound",
    "json_type",
    "leases",
    "metadata",
    "outbox",
    "sessions",
    "turns",
]

#: Every table core owns (plugins add theirs with their own migrations).
CORE_TABLES = (
    "sessions",
    "events",
    "inbound",
    "turns",
    "approvals",
    "audit",
    "leases",
    "outbox",
)


def json_type() -> TypeEngine[Any]:
    """JSON on SQLite (stored as text), JSONB on PostgreSQL."""
    return JSON().with_variant(JSONB(), "postgresql")


def id_type() -> TypeEngine[int]:
    """An autoincrement key: BIGINT on PostgreSQL, INTEGER (the rowid) on SQLite."""
    return BigInteger().with_variant(Integer(), "sqlite")


class SafeText(TypeDecorator[str]):
    """TEXT that takes any Python string: lone surrogates (not encodable as UTF-8) become
    U+FFFD, and so do NUL characters on PostgreSQL (its text cannot hold them)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return clean_text(value, nul=dialect.name == "postgresql")


def define_v1(md: MetaData) -> None:
    """The tables of core migration 1. Frozen: later changes go into a new version."""
    Table(
        "sessions",
        md,
        Column("session_id", String, primary_key=True),
        Column("key", Text, nullable=False),
        Column("address", Text),
        Column("owner", Text),
        Column("provider_session_id", String, nullable=False),
        Column("work_dir", Text, nullable=False),
        Column("state", String, nullable=False),
        Column("agent_pid", Integer),
        Column("agent_pgid", Integer),
        Column("agent_start_time", BigInteger),
        Column("last_seq", BigInteger, nullable=False),
        Column("turns", Integer, nullable=False),
        Column("input_tokens", BigInteger, nullable=False),
        Column("output_tokens", BigInteger, nullable=False),
        Column("cost_usd", Float, nullable=False),
        Column("overrides", json_type(), nullable=False),
        Column("running_turn_id", String),
        Column("created_at", Float, nullable=False),
        Column("updated_at", Float, nullable=False),
        Index("ix_sessions_key", "key"),
    )
    Table(
        "events",
        md,
        Column("session_id", String, nullable=False),
        Column("seq", BigInteger, nullable=False),
        Column("turn_id", String, nullable=False),
        Column("type", String, nullable=False),
        Column("ts", Float, nullable=False),
        Column("request_id", String),
        Column("data", json_type(), nullable=False),
        PrimaryKeyConstraint("session_id", "seq", name="pk_events"),
        Index("ix_events_ts", "ts"),
    )
    Table(
        "inbound",
        md,
        Column("id", id_type(), primary_key=True, autoincrement=True),
        Column("platform", String, nullable=False),
        Column("event_id", Text),
        Column("message_key", Text),
        Column("address", Text, nullable=False),
        Column("payload", json_type(), nullable=False),
        Column("state", String, nullable=False),
        Column("received_at", Float, nullable=False),
        Column("done_at", Float),
        UniqueConstraint("platform", "event_id", name="uq_inbound_event"),
        UniqueConstraint("platform", "message_key", name="uq_inbound_message"),
        Index("ix_inbound_state", "state"),
        sqlite_autoincrement=True,
    )
    Table(
        "turns",
        md,
        Column("id", id_type(), primary_key=True, autoincrement=True),
        Column("turn_id", String, nullable=False, unique=True),
        Column("session_id", String, nullable=False),
        Column("prompt", SafeText, nullable=False),
        Column("request_id", String),
        Column("user", Text),
        Column("state", String, nullable=False),
        Column("status", String),
        Column("created_at", Float, nullable=False),
        Column("started_at", Float),
        Column("finished_at", Float),
        Index("ix_turns_state", "state"),
        Index("ix_turns_session", "session_id"),
        sqlite_autoincrement=True,
    )
    Table(
        "approvals",
        md,
        Column("permission_id", String, primary_key=True),
        Column("kind", String, nullable=False),
        Column("session_id", String, nullable=False),
        Column("address", Text),
        Column("tool", Text, nullable=False),
        Column("input", json_type(), nullable=False),
        Column("reason", SafeText),
        Column("scopes", json_type(), nullable=False),
        Column("approvers", json_type(), nullable=False),
        Column("created_at", Float, nullable=False),
        Column("expires_at", Float, nullable=False),
        Column("decision", String),
        Column("decided_by", Text),
        Column("scope", String),
        Column("decided_at", Float),
        Index("ix_approvals_session", "session_id"),
    )
    Table(
        "audit",
        md,
        Column("id", id_type(), primary_key=True, autoincrement=True),
        Column("type", String, nullable=False),
        Column("ts", Float, nullable=False),
        Column("session_id", String),
        Column("actor", Text),
        Column("data", json_type(), nullable=False),
        Index("ix_audit_ts", "ts"),
        Index("ix_audit_type", "type"),
        Index("ix_audit_session", "session_id"),
        sqlite_autoincrement=True,
    )


def define_v2(md: MetaData) -> None:
    """Core migration 2 on top of :func:`define_v1`: ``events.stored_at`` (when the row was
    written; rows older than v2 get their ``ts``) and an index to read one turn's events."""
    table = md.tables["events"]
    table.append_column(Column("stored_at", Float))
    Index("ix_events_turn", table.c.session_id, table.c.turn_id)


def define_v3(md: MetaData) -> None:
    """Core migration 3: ``leases``, one row per named lease (see
    :mod:`hotplex.storage.leases`): who holds it and until when (Unix time)."""
    Table(
        "leases",
        md,
        Column("name", String, primary_key=True),
        Column("holder", String, nullable=False),
        Column("expires_at", Float, nullable=False),
        Column("acquired_at", Float, nullable=False),
    )



def define_v4(md: MetaData) -> None:
    """Core migration 4: ``outbox``, one row per item and consumer still to deliver or
    given up (``state`` ``pending`` or ``dead``; see :mod:`hotplex.storage.outbox`)."""
    Table(
        "outbox",
        md,
        Column("id", id_type(), primary_key=True, autoincrement=True),
        Column("consumer", String, nullable=False),
        Column("event_id", String, nullable=False),
        Column("type", String, nullable=False),
        Column("payload", json_type(), nullable=False),
        Column("state", String, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("next_attempt_at", Float, nullable=False),
        Column("last_error", SafeText),
        Column("created_at", Float, nullable=False),
        Column("updated_at", Float, nullable=False),
        UniqueConstraint("consumer", "event_id", name="uq_outbox_event"),
        Index("ix_outbox_due", "consumer", "state", "next_attempt_at"),
        Index("ix_outbox_created", "created_at"),
        sqlite_autoincrement=True,
    )

metadata = MetaData()
define_v1(metadata)
define_v2(metadata)
define_v3(metadata)
define_v4(metadata)

sessions = metadata.tables["sessions"]
events = metadata.tables["events"]
inbound = metadata.tables["inbound"]
turns = metadata.tables["turns"]
approvals = metadata.tables["approvals"]
audit = metadata.tables["audit"]
leases = metadata.tables["leases"]
outbox = metadata.tables["outbox"]
