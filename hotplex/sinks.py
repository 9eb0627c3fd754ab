"""Runs every HookSink off the hot path: one bounded queue and one task per sink.

A sink declared ``on_overflow="block"`` applies back-pressure to the emitter (storage must
not lose events); ``"drop"`` drops the newest item and counts it (metrics may lose some).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from hotplex.aio import cancel_and_wait
from hotplex.events import AgentEvent, AuditEvent
from hotplex.interfaces import HookSink
from hotplex.records import SinkSpec

__all__ = ["SinkRunner"]

log = logging.getLogger(__name__)

Item = AgentEvent | AuditEvent
MAX_BATCH = 256


@dataclass
class _Lane:
    name: str
    sink: HookSink
    block: bool
    queue: asyncio.Queue[Item]
    task: asyncio.Task[None] | None = None
    dropped: int = 0
    failures: int = 0
    delivered: int = field(default=0)


class SinkRunner:
    """Fan events out to sinks. ``emit`` never waits for a sink's work, only (for blocking
    sinks) for room in its queue."""

    def __init__(self, sinks: Mapping[str, tuple[SinkSpec, HookSink]]) -> None:
        self._lanes = [
            _Lane(name, sink, spec.on_overflow == "block", asyncio.Queue(spec.queue_size))
            for name, (spec, sink) in sinks.items()
        ]

    def start(self) -> None:
        for lane in self._lanes:
            lane.task = asyncio.create_task(self._drain(lane), name=f"sink:{lane.name}")

    async def emit(self, item: Item) -> None:
        for lane in self._lanes:
            if lane.block:
                await lane.queue.put(item)
            else:
                try:
                    lane.queue.put_nowait(item)
                except asyncio.QueueFull:
                    lane.dropped += 1

    def stats(self) -> dict[str, dict[str, int]]:
        return {
            lane.name: {
                "queued": lane.queue.qsize(),
                "dropped": lane.dropped,
                "failures": lane.failures,
                "delivered": lane.delivered,
            }
            for lane in self._lanes
        }

    async def _drain(self, lane: _Lane) -> None:
        while True:
            batch = [await lane.queue.get()]
            while len(batch) < MAX_BATCH and not lane.queue.empty():
                batch.append(lane.queue.get_nowait())
            try:
                await lane.sink.handle(batch)
                lane.delivered += len(batch)
            except Exception:
                lane.failures += 1
                log.exception("sink %r failed on a batch of %d", lane.name, len(batch))
            finally:
                for _ in batch:
                    lane.queue.task_done()

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued item was handled; False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                for lane in self._lanes:
                    await lane.queue.join()
        except TimeoutError:
            return False
        return True

    async def aclose(self, timeout: float = 10.0) -> None:
        if not await self.flush(timeout):
            log.warning("sinks did not drain within %.1fs: %s", timeout, self.stats())
        for lane in self._lanes:
            await cancel_and_wait(lane.task)
            try:
                await lane.sink.aclose()
            except Exception:
                log.exception("sink %r failed to close", lane.name)
