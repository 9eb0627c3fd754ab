"""The durable outbox on SQLite and PostgreSQL: rows written with their events in one
transaction, claimed under a lease, acknowledged, retried, dead-lettered and redelivered
with the same event id; two claimers never get one row."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from hotplex.errors import StorageError
from hotplex.events import AgentEvent, AuditEvent
from hotplex.outbox import OutboxEntry, OutboxFilter, event_id
from hotplex.storage.outbox import SqlOutbox
from hotplex.storage.sink import StorageSink
from hotplex.storage.sql import SqlStorage


class Clock:
    """The outbox's time, moved by the test (no sleeps); starts at the real time, since
    rows are created at the real time."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def ev(kind: str, seq: int, session: str = "s1") -> AgentEvent:
    data = {"text": str(seq)} if kind in ("text", "text_delta") else {"status": "ok"}
    return AgentEvent(type=kind, data=data, session_id=session, turn_id="t1", seq=seq)


FILTER = OutboxFilter({"hook:a": ["*"], "hook:b": ["done", "cron.*"]})


async def write(store: SqlStorage, events: list[AgentEvent], audit: list[AuditEvent]) -> None:
    entries = FILTER.entries([*events, *audit], time.time())
    await store.append_batch(events, audit, outbox=entries)


def test_filter_matches_patterns_and_ids_are_stable() -> None:
    assert FILTER.wanting("done") == ["hook:a", "hook:b"]
    assert FILTER.wanting("cron.run") == ["hook:a", "hook:b"]
    assert FILTER.wanting("text") == ["hook:a"]
    assert event_id(ev("text", 7)) == "evt_s1_7" == event_id(ev("text", 7))
    audit = AuditEvent("cron.run", {})
    assert event_id(audit) != event_id(audit)  # fresh per call: entries() draws it once
    entries = FILTER.entries([audit], 1.0)
    assert len({e.event_id for e in entries}) == 1 and len(entries) == 2
    assert entries[0].payload["kind"] == "audit" and entries[0].payload["id"] == entries[0].event_id


async def test_rows_are_written_with_the_events_and_once(storage: SqlStorage) -> None:
    events = [ev("text", 1), ev("done", 2)]
    audit = [AuditEvent("cron.run", {"job": "j"})]
    entries = FILTER.entries([*events, *audit], time.time())
    await storage.append_batch(events, audit, outbox=entries)
    await storage.append_batch(events, audit, outbox=entries)  # a retried batch
    outbox = SqlOutbox(storage)
    counts = await outbox.counts()
    assert counts["hook:a"]["pending"] == 3 and counts["hook:b"]["pending"] == 2
    rows = await outbox.claim("hook:b", limit=10)
    assert [r.type for r in rows] == ["done", "cron.run"]
    assert rows[0].event_id == "evt_s1_2" and rows[0].payload["seq"] == 2
    assert all(r.attempts == 1 for r in rows)


async def test_one_transaction_with_the_events(storage: SqlStorage) -> None:
    """A row that cannot be written fails the batch: neither the event nor a row stays."""
    good = ev("done", 1)
    [entry] = OutboxFilter({"hook:b": ["done"]}).entries([good], time.time())
    broken = OutboxEntry(entry.consumer, None, entry.type, {}, 1.0)  # type: ignore[arg-type]
    with pytest.raises(StorageError):
        await storage.append_batch([good], [], outbox=[broken])
    assert await storage.read_events("s1") == []
    assert await SqlOutbox(storage).counts() == {}


async def test_claim_lease_retry_dead_and_redeliver(storage: SqlStorage) -> None:
    await write(storage, [ev("done", 1), ev("done", 2)], [])
    clock = Clock()
    outbox = SqlOutbox(storage, clock=clock)
    first = await outbox.claim("hook:b", limit=1, lease=30)
    assert [r.event_id for r in first] == ["evt_s1_1"]
    second = await outbox.claim("hook:b", limit=5, lease=30)
    assert [r.event_id for r in second] == ["evt_s1_2"]  # the first is leased
    assert await outbox.claim("hook:b") == []
    clock.now += 31  # the claimer died: due again, same id, attempts counted
    again = await outbox.claim("hook:b", limit=5, lease=30)
    assert [(r.event_id, r.attempts) for r in again] == [("evt_s1_1", 2), ("evt_s1_2", 2)]
    await outbox.ack([again[1].id])
    await outbox.retry(again[0].id, clock.now + 100, "HTTP 500")
    clock.now += 50
    assert await outbox.claim("hook:b") == []  # not due yet
    clock.now += 60
    last = await outbox.claim("hook:b")
    assert [(r.event_id, r.attempts, r.last_error) for r in last] == [("evt_s1_1", 3, "HTTP 500")]
    await outbox.dead([last[0].id], "gave up after 3 attempts")
    dead = await outbox.dead_letters("hook:b")
    assert [(d.event_id, d.state, d.last_error) for d in dead] == [
        ("evt_s1_1", "dead", "gave up after 3 attempts")
    ]
    assert await outbox.claim("hook:b") == []
    assert (await outbox.counts())["hook:b"] == {
        "pending": 0,
        "dead": 1,
        "oldest_pending": None,
    }
    assert await outbox.redeliver("hook:b") == 1
    back = await outbox.claim("hook:b")
    assert [(r.event_id, r.attempts, r.state) for r in back] == [("evt_s1_1", 1, "pending")]


async def test_give_up_dead_letters_every_pending_row(storage: SqlStorage) -> None:
    outbox = SqlOutbox(storage)
    await write(storage, [ev("done", 1), ev("text", 2)], [])
    assert await outbox.give_up("hook:a", "410 Gone") == 2
    assert await outbox.claim("hook:a") == []
    assert len(await outbox.claim("hook:b")) == 1  # another consumer is not touched
    assert {d.last_error for d in await outbox.dead_letters()} == {"410 Gone"}
    assert await outbox.redeliver("hook:a", ids=[(await outbox.dead_letters())[0].id]) == 1


async def test_two_claimers_never_share_a_row(db_url: str) -> None:
    stores = [SqlStorage(db_url) for _ in range(3)]
    for store in stores:
        await asyncio.wait_for(store.open(), timeout=30)
    try:
        for i in range(0, 60, 10):
            await write(stores[0], [ev("done", n) for n in range(i + 1, i + 11)], [])
        claimed: list[str] = []

        async def drain(store: SqlStorage) -> None:
            outbox = SqlOutbox(store)
            for _ in range(100):
                rows = await outbox.claim("hook:b", limit=3, lease=60)
                if not rows:
                    return
                claimed.extend(r.event_id for r in rows)

        await asyncio.wait_for(asyncio.gather(*(drain(s) for s in stores)), timeout=30)
        assert sorted(claimed) == sorted(f"evt_s1_{n}" for n in range(1, 61))
    finally:
        for store in stores:
            await store.close()


async def test_prune_deletes_old_rows(storage: SqlStorage) -> None:
    await write(storage, [ev("done", 1)], [])
    assert await storage.prune(time.time() - 3600) == 0
    await storage.prune(time.time() + 1)
    assert await SqlOutbox(storage).counts() == {}


async def test_the_storage_sink_writes_rows_and_wakes_the_consumer(storage: SqlStorage) -> None:
    outbox = SqlOutbox(storage)
    sink = StorageSink(storage, outbox=FILTER, notify=outbox)
    waiting = asyncio.create_task(outbox.wait("hook:b", timeout=10))
    await sink.handle([ev("text_delta", 1), ev("text", 2), ev("done", 3)])
    assert await asyncio.wait_for(waiting, 10)
    assert [r.event_id for r in await outbox.claim("hook:a")] == ["evt_s1_2", "evt_s1_3"]
    assert [r.event_id for r in await outbox.claim("hook:b")] == ["evt_s1_3"]
    assert not await outbox.wait("hook:none", timeout=0.01)


def test_a_consumer_registered_twice_is_an_error() -> None:
    from types import SimpleNamespace

    from hotplex.errors import PluginError
    from hotplex.records import OutboxSpec
    from hotplex.storage.plugin import outbox_filter

    specs = {
        "a": OutboxSpec("a", lambda ctx: {"hook:x": ["*"]}),
        "b": OutboxSpec("b", lambda ctx: {"hook:x": ["done"], "hook:y": ["done"]}),
    }
    ctx: Any = SimpleNamespace(plugins=SimpleNamespace(outboxes=lambda: specs))
    with pytest.raises(PluginError, match="'hook:x' is registered by 'a' and 'b'"):
        outbox_filter(ctx)
    del specs["a"]
    assert outbox_filter(ctx).consumers == {"hook:x": ("done",), "hook:y": ("done",)}
    with pytest.raises(ValueError, match="not a str"):
        OutboxFilter({"hook:z": "done"})


def test_a_backend_without_an_outbox_is_refused() -> None:
    from hotplex.errors import ConfigError
    from hotplex.storage.plugin import make_outbox

    with pytest.raises(ConfigError, match="has no outbox"):
        make_outbox(object())  # type: ignore[arg-type]
