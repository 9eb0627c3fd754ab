"""``StorageSink``: the sink that writes every AgentEvent and AuditEvent to storage.

Run by :class:`~hotplex.sinks.SinkRunner` with ``on_overflow="block"`` (see
:func:`hotplex.storage.plugin.storage_sink_spec`): when storage is slow the emitter waits for
room in the queue; nothing is dropped.

- ``text_delta`` events are not stored: the provider emits a complete ``text`` event for
  every block, so the deltas are redundant once the block ends. Stored events keep the seq
  the engine gave them, so a session's stored seqs have gaps where deltas were; replay with
  ``read_events(session_id, since_seq=n)`` works across gaps (it asks for ``seq > n``).
- Each batch is written in one transaction (events and audit together). A failing write is
  retried with back-off for ``retry_for`` seconds (the queue keeps filling meanwhile, which
  applies back-pressure); after that the batch is given up, logged, and the waiters on its
  seqs get a :class:`~hotplex.errors.StorageError`.
- With outbox consumers registered (:mod:`hotplex.outbox`), the rows for the batch's stored
  items go into the batch's transaction, and the consumers' workers are woken after it.
- :meth:`StorageSink.committed` lets the engine emit a turn's ``done`` only after the turn's
  events are committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from hotplex.context import ServiceKey
from hotplex.errors import StorageError
from hotplex.events import AgentEvent, AuditEvent
from hotplex.interfaces import HookSink, Storage
from hotplex.outbox import Outbox, OutboxEntry, OutboxFilter

__all__ = ["STORAGE_SINK", "StorageSink"]

log = logging.getLogger(__name__)

#: Not stored (see the module docstring).
SKIPPED_TYPES = frozenset({"text_delta"})


class StorageSink(HookSink):
    """Writes batches to ``storage`` and tells waiters when a session's seq is committed."""

    def __init__(
        self,
        storage: Storage,
        *,
        retry_for: float = 30.0,
        outbox: OutboxFilter | None = None,
        notify: Outbox | None = None,
    ) -> None:
        self.storage = storage
        self.retry_for = retry_for
        #: which outbox consumers want which items (None: no outbox rows are written)
        self.outbox = outbox if outbox else None
        #: woken after each commit that wrote rows for its consumers
        self.notify = notify
        self._committed: dict[str, int] = {}
        self._waiters: dict[str, list[tuple[int, asyncio.Future[None]]]] = {}
        self._closed = False
        self.batches = 0
        self.stored = 0
        self.skipped = 0
        self.failed = 0

    def committed_seq(self, session_id: str) -> int:
        """The highest seq of the session known to be committed (0: none yet)."""
        return self._committed.get(session_id, 0)

    async def committed(self, session_id: str, seq: int) -> None:
        """Return once the session's event ``seq`` (or a later one) is committed.

        Raises StorageError if the batch holding it could not be written, or the sink closed
        first. Bound the wait with ``asyncio.timeout`` where that matters.
        """
        if self._committed.get(session_id, 0) >= seq:
            return
        if self._closed:
            raise StorageError("the storage sink is closed")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (seq, future)
        self._waiters.setdefault(session_id, []).append(entry)
        try:
            await future
        finally:
            waiting = self._waiters.get(session_id)
            if waiting is not None and entry in waiting:
                waiting.remove(entry)
                if not waiting:
                    del self._waiters[session_id]

    async def handle(self, batch: Sequence[AgentEvent | AuditEvent]) -> None:
        events: list[AgentEvent] = []
        audit: list[AuditEvent] = []
        highest: dict[str, int] = {}
        for item in batch:
            if isinstance(item, AuditEvent):
                audit.append(item)
                continue
            if not item.session_id:
                log.warning("not storing an unstamped %s event", item.type)
                continue
            highest[item.session_id] = max(highest.get(item.session_id, 0), item.seq)
            if item.type in SKIPPED_TYPES:
                self.skipped += 1
            else:
                events.append(item)
        entries = self.outbox.entries([*events, *audit], time.time()) if self.outbox else []
        try:
            await self._write(events, audit, entries)
        except Exception as exc:
            self.failed += len(events) + len(audit)
            self._fail(highest, exc)
            raise
        self.batches += 1
        self.stored += len(events) + len(audit)
        self._advance(highest)
        if entries and self.notify is not None:
            self.notify.notify({e.consumer for e in entries})

    async def _write(
        self, events: list[AgentEvent], audit: list[AuditEvent], entries: list[OutboxEntry]
    ) -> None:
        if not events and not audit:
            return
        deadline = time.monotonic() + self.retry_for
        delay = 0.05
        while True:
            try:
                if entries:
                    await self.storage.append_batch(events, audit, outbox=entries)
                else:
                    await self.storage.append_batch(events, audit)
                return
            except StorageError as exc:
                if self._closed or time.monotonic() + delay > deadline:
                    raise
                log.warning("storing a batch failed, retrying in %.2fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _advance(self, highest: dict[str, int]) -> None:
        for session_id, seq in highest.items():
            if seq <= self._committed.get(session_id, 0):
                continue
            self._committed[session_id] = seq
            for waiter_seq, future in self._waiters.get(session_id, ()):
                if waiter_seq <= seq and not future.done():
                    future.set_result(None)

    def _fail(self, highest: dict[str, int], exc: BaseException) -> None:
        for session_id, seq in highest.items():
            for waiter_seq, future in self._waiters.get(session_id, ()):
                if waiter_seq <= seq and not future.done():
                    future.set_exception(StorageError(f"events were not stored: {exc}"))

    async def aclose(self) -> None:
        """Refuse new waiters and fail the ones still waiting (the runner drained first)."""
        self._closed = True
        for waiting in self._waiters.values():
            for _, future in waiting:
                if not future.done():
                    future.set_exception(StorageError("the storage sink closed"))


#: Where core puts the storage sink, so the engine can await :meth:`StorageSink.committed`.
STORAGE_SINK: ServiceKey[StorageSink] = ServiceKey("storage_sink", StorageSink)
