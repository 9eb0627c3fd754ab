"""A stored session's fields are written down once, in ``SessionRecord``: the ``sessions``
table has exactly those columns, and the row mapper carries every one of them."""

from __future__ import annotations

from dataclasses import fields

from hotplex.storage import rows, schema
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
