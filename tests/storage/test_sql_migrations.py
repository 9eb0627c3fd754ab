"""The migration mechanism: core's versions, the upgrade from a v1 database, plugins'
migrations, failures, and several daemons migrating one database at once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Connection,
    ForeignKey,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    func,
    insert,
    inspect,
    select,
    text,
)
from storage_support import run_worker

from hotplex.errors import StorageError
from hotplex.events import AgentEvent, AuditEvent
from hotplex.storage import Migration, SessionRecord
from hotplex.storage.core_migrations import CORE_MIGRATIONS
from hotplex.storage.dialects import build_engine, parse_url
from hotplex.storage.migrator import MIGRATIONS_TABLE, apply_migrations, ordered
from hotplex.storage.schema import CORE_TABLES, define_v1, metadata
from hotplex.storage.sql import SqlStorage
from hotplex.types import ApprovalRequest, IncomingMessage


async def migration_rows(store: SqlStorage) -> list[tuple[str, int]]:
    table = MIGRATIONS_TABLE
    async with store.read() as conn:
        result = await conn.execute(
            select(table.c.component, table.c.version).order_by(table.c.component, table.c.version)
        )
        return [(str(c), int(v)) for c, v in result]


def describe(conn: Connection, table: str) -> dict[str, Any]:
    insp = inspect(conn)
    return {
        "columns": {c["name"]: bool(c["nullable"]) for c in insp.get_columns(table)},
        "indexes": {
            i["name"] for i in insp.get_indexes(table) if not i.get("duplicates_constraint")
        },
        "primary_key": sorted(insp.get_pk_constraint(table)["constrained_columns"]),
        "unique": sorted(
            tuple(sorted(u["column_names"])) for u in insp.get_unique_constraints(table)
        ),
    }


def describe_head(table: str) -> dict[str, Any]:
    t = metadata.tables[table]
    uniques = [
        tuple(sorted(c.name for c in constraint.columns))
        for constraint in t.constraints
        if isinstance(constraint, UniqueConstraint)
    ]
    return {
        "columns": {c.name: bool(c.nullable) for c in t.columns},
        "indexes": {i.name for i in t.indexes},
        "primary_key": sorted(c.name for c in t.primary_key.columns),
        "unique": sorted(uniques),
    }


async def test_fresh_database_gets_core_versions_once_and_the_head_schema(db_url: str) -> None:
    for _ in range(2):  # the second open finds nothing to do
        store = SqlStorage(db_url)
        await store.open()
        try:
            assert await migration_rows(store) == [
                ("core", 1),
                ("core", 2),
                ("core", 3),
                ("core", 4),
            ]
            async with store.read() as conn:
                for table in CORE_TABLES:
                    found = await conn.run_sync(describe, table)
                    assert found == describe_head(table), table
        finally:
            await store.close()


async def test_upgrade_from_a_v1_database_keeps_every_row(db_url: str) -> None:
    # the fixture database: made by core migration 1 only, with rows in every table
    engine = build_engine(parse_url(db_url)[0])
    try:
        assert [m.version for m in await apply_migrations(engine, CORE_MIGRATIONS[:1])] == [1]
        v1 = MetaData()
        define_v1(v1)
        t = v1.tables
        async with engine.begin() as conn:
            columns = await conn.run_sync(
                lambda c: {x["name"] for x in inspect(c).get_columns("events")}
            )
            assert "stored_at" not in columns
            await conn.execute(
                insert(t["sessions"]).values(
                    session_id="s1",
                    key="k1",
                    address="web:default/s1",
                    owner="u",
                    provider_session_id="p1",
                    work_dir="/w",
                    state="idle",
                    agent_pid=None,
                    agent_pgid=None,
                    agent_start_time=None,
                    last_seq=2,
                    turns=1,
                    input_tokens=3,
                    output_tokens=4,
                    cost_usd=0.5,
                    overrides={"model": "m"},
                    running_turn_id=None,
                    created_at=10.0,
                    updated_at=11.0,
                )
            )
            await conn.execute(
                insert(t["events"]),
                [
                    {
                        "session_id": "s1",
                        "seq": 1,
                        "turn_id": "t1",
                        "type": "text",
                        "ts": 12.5,
                        "request_id": "r1",
                        "data": {"text": "hi"},
                    },
                    {
                        "session_id": "s1",
                        "seq": 2,
                        "turn_id": "t1",
                        "type": "done",
                        "ts": 13.5,
                        "request_id": None,
                        "data": {"status": "ok", "duration_ms": 5},
                    },
                ],
            )
            payload = {
                "address": "web:default/s1",
                "text": "hello",
                "user": "u",
                "platform": "web",
                "event_id": "e1",
                "message_key": None,
                "attachments": [],
                "received_at": 9.0,
                "raw": None,
            }
            await conn.execute(
                insert(t["inbound"]).values(
                    platform="web",
                    event_id="e1",
                    message_key=None,
                    address="web:default/s1",
                    payload=payload,
                    state="received",
                    received_at=9.0,
                    done_at=None,
                )
            )
            await conn.execute(
                insert(t["turns"]).values(
                    turn_id="t2",
                    session_id="s1",
                    prompt="next",
                    request_id=None,
                    user="u",
                    state="queued",
                    status=None,
                    created_at=14.0,
                )
            )
            await conn.execute(
                insert(t["approvals"]).values(
                    permission_id="p1",
                    kind="tool",
                    session_id="s1",
                    address=None,
                    tool="Bash",
                    input={"command": "ls"},
                    reason=None,
                    scopes=["once"],
                    approvers=[],
                    created_at=1.0,
                    expires_at=2.0,
                    decision="allow",
                    decided_by="u",
                    scope="once",
                    decided_at=1.5,
                )
            )
            await conn.execute(
                insert(t["audit"]).values(
                    type="session.created", ts=8.0, session_id="s1", actor="u", data={"x": 1}
                )
            )
    finally:
        await engine.dispose()

    store = SqlStorage(db_url)
    await store.open()
    try:
        assert await migration_rows(store) == [("core", 1), ("core", 2), ("core", 3), ("core", 4)]
        assert await store.integrity_check() == []
        events = await store.read_events("s1")
        assert [e.to_dict() for e in events] == [
            {
                "type": "text",
                "session_id": "s1",
                "turn_id": "t1",
                "seq": 1,
                "ts": 12.5,
                "request_id": "r1",
                "data": {"text": "hi"},
            },
            {
                "type": "done",
                "session_id": "s1",
                "turn_id": "t1",
                "seq": 2,
                "ts": 13.5,
                "data": {"status": "ok", "duration_ms": 5},
            },
        ]
        async with store.read() as conn:
            stored_at = (
                await conn.execute(text("SELECT stored_at FROM events ORDER BY seq"))
            ).all()
        assert [row[0] for row in stored_at] == [12.5, 13.5]  # backfilled from ts
        session = await store.get_session("s1")
        assert session == SessionRecord(
            session_id="s1",
            key="k1",
            address="web:default/s1",
            owner="u",
            provider_session_id="p1",
            work_dir="/w",
            state="idle",
            last_seq=2,
            turns=1,
            input_tokens=3,
            output_tokens=4,
            cost_usd=0.5,
            overrides={"model": "m"},
            created_at=10.0,
            updated_at=11.0,
        )
        assert await store.pending_inbound() == [
            IncomingMessage(
                address="web:default/s1",
                text="hello",
                user="u",
                platform="web",
                event_id="e1",
                received_at=9.0,
            )
        ]
        assert [t.turn_id for t in await store.pending_turns()] == ["t2"]
        approval = await store.get_approval("p1")
        assert approval is not None and approval.decision == "allow"
        assert isinstance(approval.request, ApprovalRequest)
        [audit] = await store.read_audit()
        assert audit.event == AuditEvent(
            type="session.created", data={"x": 1}, session_id="s1", actor="u", ts=8.0
        )
        # and the upgraded database takes new rows as usual
        await store.append_batch(
            [AgentEvent(type="text", data={"text": "3"}, session_id="s1", seq=3)], ()
        )
        assert [e.seq for e in await store.read_events("s1", since_seq=2)] == [3]
    finally:
        await store.close()


# -- plugins' migrations -----------------------------------------------------------------


def cron_migrations(calls: list[str]) -> list[Migration]:
    def v1(conn: Connection) -> None:
        calls.append("v1")
        md = MetaData()
        Table("sessions", md, autoload_with=conn)  # core's table, for the foreign key
        Table(
            "cron_jobs",
            md,
            Column("id", String, primary_key=True),
            Column("session_id", String, ForeignKey("sessions.session_id")),
        ).create(conn)

    def v2(conn: Connection) -> None:
        calls.append("v2")
        conn.execute(text("ALTER TABLE cron_jobs ADD COLUMN paused INTEGER NOT NULL DEFAULT 0"))

    # given out of order: applied by version; the component sorts before "core" by name but
    # runs after core (its foreign key needs the sessions table)
    return [Migration("aaa-cron", 2, "paused", v2), Migration("aaa-cron", 1, "cron_jobs", v1)]


async def test_plugin_migrations_apply_once_after_core(db_url: str) -> None:
    calls: list[str] = []
    store = SqlStorage(db_url, migrations=cron_migrations(calls))
    await store.open()
    await store.close()
    store = SqlStorage(db_url, migrations=cron_migrations(calls))
    await store.open()
    try:
        assert calls == ["v1", "v2"]
        assert await migration_rows(store) == [
            ("aaa-cron", 1),
            ("aaa-cron", 2),
            ("core", 1),
            ("core", 2),
            ("core", 3),
            ("core", 4),
        ]
        await store.save_session(SessionRecord(session_id="s1", key="k"))
        async with store.write() as conn:
            await conn.execute(text("INSERT INTO cron_jobs (id, session_id) VALUES ('j', 's1')"))
        async with store.read() as conn:
            assert (await conn.execute(text("SELECT id, paused FROM cron_jobs"))).all() == [
                ("j", 0)
            ]
        # a plugin that starts later migrates from its start-up resource
        late = [
            Migration(
                "relay",
                1,
                "bindings",
                lambda c: c.execute(text("CREATE TABLE relay_b (x INTEGER)")),
            )
        ]
        assert [str(m) for m in await store.migrate(late)] == ["relay v1 (bindings)"]
        assert await store.migrate(late) == []
        assert ("relay", 1) in await migration_rows(store)
    finally:
        await store.close()


async def test_failed_migration_is_not_recorded_and_is_retried(db_url: str) -> None:
    def good(conn: Connection) -> None:
        conn.execute(text("CREATE TABLE good_t (x INTEGER)"))

    def bad(conn: Connection) -> None:
        conn.execute(text("CREATE TABLE bad_t (x INTEGER)"))
        raise RuntimeError("boom")

    store = SqlStorage(
        db_url, migrations=[Migration("good", 1, "g", good), Migration("zbad", 1, "b", bad)]
    )
    with pytest.raises(StorageError, match=r"zbad v1 \(b\) failed: boom"):
        await store.open()
    fixed = SqlStorage(
        db_url,
        migrations=[
            Migration("good", 1, "g", good),
            Migration("zbad", 1, "b", lambda c: c.execute(text("CREATE TABLE bad_t (y INTEGER)"))),
        ],
    )
    await fixed.open()  # bad_t was rolled back with the failed migration: created anew
    try:
        rows = await migration_rows(fixed)
        assert rows == [
            ("core", 1),
            ("core", 2),
            ("core", 3),
            ("core", 4),
            ("good", 1),
            ("zbad", 1),
        ]
        async with fixed.read() as conn:
            cols = await conn.run_sync(
                lambda c: [x["name"] for x in inspect(c).get_columns("bad_t")]
            )
        assert cols == ["y"]
    finally:
        await fixed.close()


def test_migration_records_are_validated() -> None:
    def noop(conn: Connection) -> None:
        return None

    with pytest.raises(ValueError, match="component"):
        Migration("Bad Name", 1, "x", noop)
    with pytest.raises(ValueError, match=">= 1"):
        Migration("ok", 0, "x", noop)
    with pytest.raises(ValueError, match="int"):
        Migration("ok", True, "x", noop)
    with pytest.raises(StorageError, match="two migrations claim ok v1"):
        ordered([Migration("ok", 1, "a", noop), Migration("ok", 1, "b", noop)])
    with pytest.raises(StorageError, match="two migrations claim core v1"):
        SqlStorage("sqlite+aiosqlite://", migrations=[Migration("core", 1, "mine", noop)])


# -- several daemons at once -------------------------------------------------------------


async def test_concurrent_opens_in_one_process_migrate_once(db_url: str) -> None:
    calls: list[str] = []
    stores = [SqlStorage(db_url, migrations=cron_migrations(calls)) for _ in range(4)]
    try:
        await asyncio.wait_for(asyncio.gather(*(s.open() for s in stores)), timeout=40)
        assert calls == ["v1", "v2"]
        for store in stores:
            assert await migration_rows(store) == [
                ("aaa-cron", 1),
                ("aaa-cron", 2),
                ("core", 1),
                ("core", 2),
                ("core", 3),
                ("core", 4),
            ]
    finally:
        for store in stores:
            await store.close()


async def test_concurrent_opens_in_separate_processes_migrate_once(db_url: str) -> None:
    results = await asyncio.gather(*(run_worker("migrate", db_url) for _ in range(3)))
    for code, out, err in results:
        assert code == 0, err
        assert out.strip() == "opened"
    store = SqlStorage(db_url)
    await store.open()
    try:
        assert await migration_rows(store) == [
            ("core", 1),
            ("core", 2),
            ("core", 3),
            ("core", 4),
            ("worker", 1),
        ]
        async with store.read() as conn:
            count = await conn.scalar(select(func.count()).select_from(text("worker_plugin")))
        assert count == 1
    finally:
        await store.close()


async def test_the_example_in_docs_storage_md_works(db_url: str) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "storage.md").read_text()
    [example] = [b for b in doc.split("```python\n")[1:] if "MIGRATIONS = [" in b]
    namespace: dict[str, Any] = {}
    exec(example.split("```", 1)[0], namespace)
    store = SqlStorage(db_url, migrations=namespace["MIGRATIONS"])
    await store.open()
    try:
        assert ("cron", 2) in await migration_rows(store)
        await store.save_session(SessionRecord(session_id="s1", key="k"))
        async with store.write() as conn:
            await conn.execute(
                text(
                    "INSERT INTO cron_jobs (id, session_id, schedule, created_at) "
                    "VALUES ('j1', 's1', '0 * * * *', 1.0)"
                )
            )
        async with store.read() as conn:
            rows = (await conn.execute(text("SELECT id, paused FROM cron_jobs"))).all()
        assert [tuple(r) for r in rows] == [("j1", 0)]
    finally:
        await store.close()
