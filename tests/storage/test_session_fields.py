"""A stored session's fields are written down once, in ``SessionRecord``: the ``sessions``
table has exactly those columns, the row mapper carries every one of them, and a live
session's record (and the session restored from it) carries them by name."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from hotplex.engine.persistence import CARRIED, record_of, restore
from hotplex.engine.session import Session
from hotplex.storage import rows, schema
from hotplex.storage.sql import SqlStorage
from hotplex.stored import SESSION_FIELDS, SessionRecord


def test_the_sessions_table_has_the_records_fields() -> None:
    assert tuple(schema.sessions.c.keys()) == SESSION_FIELDS
    assert tuple(f.name for f in fields(SessionRecord)) == SESSION_FIELDS


def test_the_row_mapper_round_trips_every_field() -> None:
    record = SessionRecord(
        session_id="s1",
        key="k",
        address="web:a/b",
        owner="alice",
        provider_session_id="p1",
        work_dir="/w",
        state="idle",
        agent_pid=10,
        agent_pgid=10,
        agent_start_time=12345,
        last_seq=7,
        turns=2,
        input_tokens=30,
        output_tokens=40,
        cost_usd=0.5,
        overrides={"model": "m"},
        running_turn_id="t1",
        created_at=1.0,
        updated_at=2.0,
    )
    row = rows.session_row(record)
    assert set(row) == set(SESSION_FIELDS)
    assert rows.session_from_row(row) == record


async def test_a_session_comes_back_from_its_record(storage: SqlStorage, tmp_path: Path) -> None:
    session = Session(
        key="k",
        session_id="s1",
        address="web:a/b",
        owner="alice",
        provider_session_id="p1",
        work_dir=tmp_path,
        seq=9,
        turns=3,
        input_tokens=30,
        output_tokens=40,
        cost_usd=0.25,
        overrides={"model": "m"},
        created_at=5.0,
    )
    record = record_of(session)
    assert record.state == "stopped" and record.last_seq == 9 and record.work_dir == str(tmp_path)
    # every stored field a live session has is carried by name (work_dir as a Path)
    assert {name for name in SESSION_FIELDS if hasattr(session, name)} <= {*CARRIED, "work_dir"}
    await storage.save_session(record)
    stored = await storage.get_session("s1")
    assert stored is not None
    back = await restore(storage, stored)
    for name in (*CARRIED, "work_dir", "seq"):
        assert getattr(back, name) == getattr(session, name), name
    assert back.started_once
