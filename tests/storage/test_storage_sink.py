"""StorageSink: batches, text_delta coalescing, committed() waits, retries, back-pressure
through SinkRunner, and the registration records."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from hotplex.config import Settings
from hotplex.context import PluginContext
from hotplex.errors import StorageError
from hotplex.events import AgentEvent, AuditEvent, agent_event
from hotplex.plugins import HotplexPluginManager
from hotplex.records import SinkSpec
from hotplex.services import STORAGE
from hotplex.sinks import SinkRunner
from hotplex.storage import plugin
from hotplex.storage.sink import STORAGE_SINK, StorageSink
from hotplex.storage.sql import SqlStorage


def ev(kind: str, seq: int, session: str = "s1", **data: Any) -> AgentEvent:
    if not data:
        data = {"text": f"{kind} {seq}"}
    return agent_event(kind, **data).stamped(  # type: ignore[arg-type]
        session_id=session, turn_id="turn_1", seq=seq, request_id="req_1"
    )


class Gated:
    """Wraps a storage: append_batch waits for ``gate`` and counts calls."""

    def __init__(self, inner: SqlStorage) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()
        self.calls = 0

    async def append_batch(self, events: Sequence[AgentEvent], audit: Sequence[AuditEvent]) -> None:
        self.calls += 1
        self.entered.set()
        await self.gate.wait()
        await self.inner.append_batch(events, audit)


class Flaky:
    """Fails the first ``failures`` writes with StorageError, then delegates (or never)."""

    def __init__(self, inner: SqlStorage | None, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.calls = 0

    async def append_batch(self, events: Sequence[AgentEvent], audit: Sequence[AuditEvent]) -> None:
        self.calls += 1
        if self.inner is None or self.calls <= self.failures:
            raise StorageError("database is down")
        await self.inner.append_batch(events, audit)


class Slow:
    """A slow storage: every batch takes ``delay`` longer."""

    def __init__(self, inner: SqlStorage, delay: float) -> None:
        self.inner = inner
        self.delay = delay
        self.batch_sizes: list[int] = []

    async def append_batch(self, events: Sequence[AgentEvent], audit: Sequence[AuditEvent]) -> None:
        self.batch_sizes.append(len(events) + len(audit))
        await asyncio.sleep(self.delay)
        await self.inner.append_batch(events, audit)


async def test_batch_skips_text_delta_keeps_seqs_and_replays_across_gaps(
    storage: SqlStorage,
) -> None:
    sink = StorageSink(storage)
    batch: list[AgentEvent | AuditEvent] = [
        ev("session", 1, state="started"),
        ev("text_delta", 2),
        ev("text_delta", 3),
        ev("text", 4, text="hello world"),
        AuditEvent(type="session.created", data={"by": "u"}, session_id="s1"),
        ev("text_delta", 5),
        ev("text", 6, text="more"),
        ev("done", 7, status="ok", duration_ms=3),
    ]
    await sink.handle(batch)
    stored = await storage.read_events("s1")
    assert [e.seq for e in stored] == [1, 4, 6, 7]
    assert [e.to_dict() for e in stored] == [
        e.to_dict() for e in batch if isinstance(e, AgentEvent) and e.type != "text_delta"
    ]
    # a client that saw up to seq 2 (a delta) replays from there: nothing is missed
    assert [e.seq for e in await storage.read_events("s1", since_seq=2)] == [4, 6, 7]
    assert [e.seq for e in await storage.read_events("s1", since_seq=5)] == [6, 7]
    assert [r.event.type for r in await storage.read_audit()] == ["session.created"]
    assert (sink.stored, sink.skipped, sink.batches) == (5, 3, 1)
    assert sink.committed_seq("s1") == 7
    await asyncio.wait_for(sink.committed("s1", 5), 1)  # a delta's seq counts too


async def test_committed_resolves_only_after_the_commit(storage: SqlStorage) -> None:
    gated = Gated(storage)
    sink = StorageSink(gated)  # type: ignore[arg-type]
    seen_at_wakeup: list[list[int]] = []

    async def engine_waits_then_reads() -> None:
        await sink.committed("s1", 3)
        seen_at_wakeup.append([e.seq for e in await storage.read_events("s1")])

    waiter = asyncio.create_task(engine_waits_then_reads())
    early = asyncio.create_task(sink.committed("s1", 1))
    other = asyncio.create_task(sink.committed("s2", 1))
    handling = asyncio.create_task(
        sink.handle([ev("text", 1), ev("text", 2), ev("done", 3, status="ok", duration_ms=1)])
    )
    await asyncio.wait_for(gated.entered.wait(), 5)
    await asyncio.sleep(0.05)
    assert not waiter.done() and not early.done()  # written, not committed yet
    assert await storage.read_events("s1") == []
    gated.gate.set()
    await asyncio.wait_for(asyncio.gather(handling, waiter, early), 5)
    assert seen_at_wakeup == [[1, 2, 3]]
    assert not other.done()  # another session's seq is still unknown
    await sink.handle([ev("text", 1, session="s2")])
    await asyncio.wait_for(other, 5)
    await asyncio.wait_for(sink.committed("s1", 2), 1)  # already committed: immediate


async def test_committed_waiters_for_later_seqs_keep_waiting(storage: SqlStorage) -> None:
    sink = StorageSink(storage)
    later = asyncio.create_task(sink.committed("s1", 10))
    await sink.handle([ev("text", i) for i in range(1, 6)])
    await asyncio.sleep(0.01)
    assert not later.done()
    await sink.handle([ev("text_delta", 11)])  # an unstored delta past it still counts
    await asyncio.wait_for(later, 5)


async def test_cancelled_waiter_is_forgotten(storage: SqlStorage) -> None:
    sink = StorageSink(storage)
    waiter = asyncio.create_task(sink.committed("s1", 1))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert sink._waiters == {}
    await sink.handle([ev("text", 1)])


async def test_transient_failures_are_retried(storage: SqlStorage) -> None:
    flaky = Flaky(storage, failures=2)
    sink = StorageSink(flaky, retry_for=5.0)  # type: ignore[arg-type]
    waiter = asyncio.create_task(sink.committed("s1", 1))
    await asyncio.wait_for(sink.handle([ev("text", 1)]), 10)
    await asyncio.wait_for(waiter, 1)
    assert flaky.calls == 3
    assert [e.seq for e in await storage.read_events("s1")] == [1]


async def test_lasting_failure_fails_the_waiters(backend: str) -> None:
    flaky = Flaky(None, failures=0)
    sink = StorageSink(flaky, retry_for=0.3)  # type: ignore[arg-type]
    waiter = asyncio.create_task(sink.committed("s1", 2))
    unrelated = asyncio.create_task(sink.committed("s1", 50))
    started = time.monotonic()
    with pytest.raises(StorageError, match="database is down"):
        await asyncio.wait_for(sink.handle([ev("text", 1), ev("text", 2)]), 10)
    assert time.monotonic() - started < 5 and flaky.calls >= 2
    with pytest.raises(StorageError, match="not stored"):
        await asyncio.wait_for(waiter, 1)
    assert sink.committed_seq("s1") == 0 and sink.failed == 2
    await sink.aclose()
    with pytest.raises(StorageError, match="closed"):
        await asyncio.wait_for(unrelated, 1)
    with pytest.raises(StorageError, match="closed"):
        await sink.committed("s1", 99)


async def test_back_pressure_through_the_sink_runner_drops_nothing(storage: SqlStorage) -> None:
    slow = Slow(storage, delay=0.002)
    sink = StorageSink(slow)  # type: ignore[arg-type]
    spec = SinkSpec(name="storage", factory=lambda ctx: sink, on_overflow="block", queue_size=8)
    runner = SinkRunner({"storage": (spec, sink)})
    runner.start()
    total = 5000
    max_queued = 0
    held_back = 0
    queue = runner._lanes[0].queue
    try:
        for seq in range(1, total + 1):
            held_back += queue.full()  # this emit has to wait for the sink
            await runner.emit(ev("status", seq))
            max_queued = max(max_queued, runner.stats()["storage"]["queued"])
            if seq % 1000 == 0:
                await runner.emit(AuditEvent(type="cron.run", data={"seq": seq}))
        await asyncio.wait_for(sink.committed("s1", total), 45)
        assert await runner.flush(10)
    finally:
        await runner.aclose(timeout=10)
    stats = runner.stats()["storage"]
    assert stats["dropped"] == 0 and stats["failures"] == 0
    assert stats["delivered"] == total + 5
    assert held_back > 100  # the emitter waited for the slow storage, often
    assert max_queued <= 8 and max(slow.batch_sizes) <= 8
    stored = await storage.read_events("s1", limit=total + 1)
    assert [e.seq for e in stored] == list(range(1, total + 1))
    assert len(await storage.read_audit(types=["cron.run"])) == 5


# -- registration ------------------------------------------------------------------------


async def test_storage_records_sink_spec_and_retention(
    db_url: str, hotplex_settings: Settings, hotplex_plugins: HotplexPluginManager, tmp_path: Path
) -> None:
    ctx = PluginContext(settings=hotplex_settings, plugins=hotplex_plugins)
    [spec] = plugin.storage_records()
    assert spec.name == "sqlalchemy" and spec.schemes == ("sqlite+aiosqlite", "postgresql+asyncpg")
    store = spec.factory(ctx, db_url)
    assert isinstance(store, SqlStorage)
    await store.open()
    try:
        ctx.services.set(STORAGE, store)
        sink_spec = plugin.storage_sink_spec()
        assert (sink_spec.on_overflow, sink_spec.queue_size) == ("block", 10_000)
        sink = sink_spec.factory(ctx)
        assert sink is ctx.services.get(STORAGE_SINK) and sink_spec.factory(ctx) is sink
        now = time.time()
        old = AgentEvent(
            type="text", data={"text": "old"}, session_id="s", seq=1, ts=now - 31 * 86400
        )
        new = AgentEvent(
            type="text", data={"text": "new"}, session_id="s", seq=2, ts=now - 29 * 86400
        )
        await store.append_batch([old, new], ())
        assert await plugin.prune_expired(store, 0) == 0  # 0 days: keep everything
        assert len(await store.read_events("s")) == 2
        assert hotplex_settings.storage.retention_days == 30
        resource = plugin.retention_resource()
        async with resource.factory(ctx):
            for _ in range(100):
                if len(await store.read_events("s")) == 1:
                    break
                await asyncio.sleep(0.05)
        assert [e.seq for e in await store.read_events("s")] == [2]
    finally:
        await store.close()
