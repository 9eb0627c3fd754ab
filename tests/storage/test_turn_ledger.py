"""The turn ledger (``Storage.accept_turn``, ``start_turn``, ``end_turn``): a turn's start and
its end in one transaction each, and on SQLite the start in the WAL before its fsync
(hotplex.storage.fastpath)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

import hotplex.storage.fastpath as fastpath
from hotplex.interfaces import Storage
from hotplex.storage.schema import inbound
from hotplex.storage.sql import SqlStorage
from hotplex.stored import SessionRecord
from hotplex.types import IncomingMessage


def web_message(text: str = "hi") -> IncomingMessage:
    return IncomingMessage(address="web:k/s1", text=text, user="k", platform="web")


async def inbound_rows(storage: SqlStorage) -> list[tuple[str | None, str, str]]:
    async with storage.read() as conn:
        result = await conn.execute(
            select(inbound.c.event_id, inbound.c.state, inbound.c.payload).order_by(inbound.c.id)
        )
        return [(row.event_id, row.state, row.payload["text"]) for row in result]


async def test_accept_turn_stores_the_turn_and_its_message_in_one_go(storage: SqlStorage) -> None:
    assert type(storage).accept_turn is not Storage.accept_turn  # one transaction, not two
    await storage.accept_turn("s1", "t1", "p\udc80", user="k", inbound=web_message(), started=True)
    await storage.accept_turn("s1", "t2", "queued", request_id="r2", inbound=web_message("two"))
    await storage.accept_turn("s1", "t1", "again ignored", started=True)
    await storage.synced()
    pending = await storage.pending_turns()
    assert [(t.turn_id, t.state, t.prompt) for t in pending] == [
        ("t1", "started", "p\ufffd"),
        ("t2", "queued", "queued"),
    ]
    assert pending[0].started_at is not None and pending[1].started_at is None
    assert pending[0].user == "k" and pending[1].request_id == "r2"
    # never recorded (no ids to de-duplicate on): inserted as done with its turn
    assert await inbound_rows(storage) == [(None, "done", "hi"), (None, "done", "two")]
    assert await storage.pending_inbound() == []


async def test_accept_turn_marks_a_recorded_message_done(storage: SqlStorage) -> None:
    chat = IncomingMessage(
        address="slack:T/C", text="chat", user="U", platform="slack", event_id="Ev1"
    )
    replayed = web_message("replayed")  # recorded by an earlier version, replayed
    assert await storage.record_inbound(chat)
    assert await storage.record_inbound(replayed)
    await storage.accept_turn("s1", "t1", "chat", inbound=chat, started=True)
    await storage.accept_turn("s1", "t2", "replayed", inbound=replayed)
    assert await inbound_rows(storage) == [("Ev1", "done", "chat"), (None, "done", "replayed")]
    assert not await storage.record_inbound(chat)  # still de-duplicated


async def test_end_turn_finishes_the_turn_and_stores_the_session(storage: SqlStorage) -> None:
    await storage.accept_turn("s1", "t1", "p", started=True)
    record = SessionRecord(session_id="s1", key="k", state="idle", turns=3, last_seq=9)
    await storage.end_turn("t1", "ok", record)
    assert await storage.pending_turns() == []
    stored = await storage.get_session("s1")
    assert stored is not None and (stored.turns, stored.last_seq) == (3, 9)


def test_the_turn_ledger_methods_are_the_interfaces_primitives() -> None:
    """One method per step of a turn, each abstract: no default built on another."""
    assert {"accept_turn", "start_turn", "end_turn", "append_batch"} <= (
        Storage.__abstractmethods__
    )
    for gone in ("enqueue_turn", "finish_turn", "append_events", "append_audit"):
        assert not hasattr(Storage, gone), gone


async def test_end_turn_without_a_session_finishes_only_the_turn(storage: SqlStorage) -> None:
    await storage.accept_turn("s1", "t1", "p", started=True)
    await storage.accept_turn("s1", "t2", "q")
    await storage.end_turn("t1", "interrupted")
    assert [t.turn_id for t in await storage.pending_turns()] == ["t2"]
    assert await storage.get_session("s1") is None


async def test_sqlite_accept_is_in_the_wal_before_its_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The turn's record is visible (a crashed daemon's successor would find it) while its
    fsync still runs; synced() waits for that fsync."""
    release = threading.Event()
    real = fastpath._fsync_wal

    def slow_fsync(path: Path) -> None:
        assert release.wait(10)
        real(path)

    storage = SqlStorage(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")
    await storage.open()
    other = SqlStorage(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")
    await other.open()
    try:
        monkeypatch.setattr(fastpath, "_fsync_wal", slow_fsync)
        await asyncio.wait_for(storage.accept_turn("s1", "t1", "p", started=True), 5)
        synced = storage.synced()
        assert [t.turn_id for t in await other.pending_turns()] == ["t1"]
        await asyncio.sleep(0.05)
        assert not synced.done()  # type: ignore[attr-defined]
        release.set()
        await asyncio.wait_for(synced, 5)
    finally:
        release.set()
        await storage.close()
        await other.close()


async def test_sqlite_synchronous_normal_needs_no_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_fsync(path: Path) -> None:
        raise AssertionError("NORMAL does not fsync at commit")

    monkeypatch.setattr(fastpath, "_fsync_wal", no_fsync)
    storage = SqlStorage(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}?synchronous=normal")
    await storage.open()
    try:
        await storage.accept_turn("s1", "t1", "p", started=True)
        assert storage.synced().done()  # type: ignore[attr-defined]
    finally:
        await storage.close()
