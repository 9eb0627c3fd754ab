"""The durable outbox: events and audit records that a delivery plugin must send out,
written by the storage sink in the same transaction as the events themselves.

A plugin names its consumers with an :class:`~hotplex.records.OutboxSpec` (hook
``hotplex_register_outbox``): each consumer is a name and the event types it wants
(``fnmatch`` patterns: ``"*"``, ``"done"``, ``"cron.*"``). The storage sink turns every
stored AgentEvent and AuditEvent a consumer wants into an :class:`OutboxEntry` row in that
same commit, so an event that is stored is also due for delivery, crash or no crash.
Delivery workers then :meth:`Outbox.claim` rows (claiming leases a row for a while: a row
claimed by a process that died is due again once the lease ends), and :meth:`Outbox.ack`
(delivered: the row goes), :meth:`Outbox.retry` (due again at a given time) or
:meth:`Outbox.dead` (dead letter, kept until :meth:`Outbox.redeliver`).

The interface has no SQL; :mod:`hotplex.storage.outbox` implements it on ``SqlStorage``
and core publishes it as service :data:`OUTBOX` when at least one consumer is registered.
docs/storage.md describes the table and the guarantees.
"""

from __future__ import annotations

import asyncio
import fnmatch
import uuid
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hotplex.context import ServiceKey
from hotplex.events import AgentEvent, AuditEvent

__all__ = [
    "OUTBOX",
    "Outbox",
    "OutboxEntry",
    "OutboxFilter",
    "OutboxRow",
    "OutboxState",
    "event_id",
]

OutboxState = Literal["pending", "dead"]


def event_id(item: AgentEvent | AuditEvent) -> str:
    """A stable id for an item: ``evt_<session>_<seq>`` for an AgentEvent (unique per
    stored event), a fresh ``aud_<uuid>`` for an AuditEvent (which has no id of its own
    until it is stored; the outbox row keeps the one given here)."""
    if isinstance(item, AgentEvent):
        return f"evt_{item.session_id}_{item.seq}"
    return f"aud_{uuid.uuid4().hex}"


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A row to write: ``payload`` is the item's ``to_dict()`` with ``kind`` (``event`` or
    ``audit``) and ``id`` (the event id) added."""

    consumer: str
    event_id: str
    type: str
    payload: dict[str, Any]
    created_at: float


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A stored outbox row. ``attempts`` counts claims (a claim whose process died counts
    too); ``next_attempt_at`` is when it is due (Unix time; a claimed row is due again when
    its lease ends)."""

    id: int
    consumer: str
    event_id: str
    type: str
    payload: dict[str, Any]
    state: OutboxState
    attempts: int
    next_attempt_at: float
    last_error: str | None
    created_at: float
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "consumer": self.consumer,
            "event_id": self.event_id,
            "type": self.type,
            "state": self.state,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


class OutboxFilter:
    """Which consumers want which items: consumer name -> type patterns."""

    def __init__(self, consumers: Mapping[str, Collection[str]]) -> None:
        for name, patterns in consumers.items():
            if not name:
                raise ValueError("an outbox consumer needs a name")
            if isinstance(patterns, str):
                raise ValueError(f"outbox consumer {name!r}: types must be a list, not a str")
        self.consumers: dict[str, tuple[str, ...]] = {
            name: tuple(patterns) for name, patterns in consumers.items()
        }

    def __bool__(self) -> bool:
        return bool(self.consumers)

    def wanting(self, item_type: str) -> list[str]:
        """The consumers whose patterns match ``item_type``."""
        return [
            name
            for name, patterns in self.consumers.items()
            if any(fnmatch.fnmatchcase(item_type, p) for p in patterns)
        ]

    def entries(self, items: Iterable[AgentEvent | AuditEvent], now: float) -> list[OutboxEntry]:
        """The rows for ``items`` (call once per batch, before retrying its write: an audit
        item's id is drawn here and must stay the same across retries)."""
        out: list[OutboxEntry] = []
        for item in items:
            names = self.wanting(item.type)
            if not names:
                continue
            eid = event_id(item)
            kind = "event" if isinstance(item, AgentEvent) else "audit"
            payload = {"id": eid, "kind": kind, **item.to_dict()}
            out.extend(OutboxEntry(name, eid, item.type, payload, now) for name in names)
        return out


class Outbox(ABC):
    """Claim, acknowledge, retry and dead-letter outbox rows (service :data:`OUTBOX`)."""

    def __init__(self) -> None:
        self._wakeups: dict[str, asyncio.Event] = {}

    def notify(self, consumers: Iterable[str]) -> None:
        """Wake the consumers' workers (the storage sink calls it after each commit)."""
        for name in consumers:
            self._wakeup(name).set()

    async def wait(self, consumer: str, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for new rows of ``consumer`` in this process; True
        when notified. Rows written by another process are seen at the next claim only."""
        event = self._wakeup(consumer)
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            return False
        finally:
            event.clear()
        return True

    def _wakeup(self, consumer: str) -> asyncio.Event:
        event = self._wakeups.get(consumer)
        if event is None:
            event = self._wakeups[consumer] = asyncio.Event()
        return event

    @abstractmethod
    async def claim(
        self, consumer: str, *, limit: int = 10, lease: float = 60.0
    ) -> list[OutboxRow]:
        """Up to ``limit`` due pending rows of ``consumer`` in id order, leased for
        ``lease`` seconds (their ``attempts`` incremented). Rows claimed by someone else and
        not yet due are skipped."""

    @abstractmethod
    async def ack(self, ids: Sequence[int]) -> None:
        """The rows were delivered: delete them."""

    @abstractmethod
    async def retry(self, row_id: int, at: float, error: str) -> None:
        """Due again at ``at`` (Unix time), with the error that failed this attempt."""

    @abstractmethod
    async def dead(self, row_ids: Sequence[int], error: str) -> None:
        """Give the rows up: they stay as dead letters until redelivered or pruned."""

    @abstractmethod
    async def dead_letters(
        self, consumer: str | None = None, *, limit: int = 100
    ) -> list[OutboxRow]:
        """Dead rows, oldest first (of one consumer, or all)."""

    @abstractmethod
    async def redeliver(self, consumer: str, ids: Sequence[int] | None = None) -> int:
        """Make dead rows of ``consumer`` (all, or ``ids``) pending and due now, attempts
        reset; how many. Their event ids stay the same."""

    @abstractmethod
    async def counts(self) -> dict[str, dict[str, Any]]:
        """Per consumer: ``pending`` and ``dead`` row counts and ``oldest_pending`` (the
        creation time of the oldest pending row, or None)."""

    @abstractmethod
    async def give_up(self, consumer: str, error: str) -> int:
        """Dead-letter every pending row of ``consumer`` (an endpoint that is gone); how many."""


#: The outbox over the opened storage (set by core when a plugin registers consumers).
OUTBOX: ServiceKey[Outbox] = ServiceKey("outbox", Outbox)  # type: ignore[type-abstract]
