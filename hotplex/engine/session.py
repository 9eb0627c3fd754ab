"""A session (one conversation's agent) and its turns.

Every event of a session passes through :meth:`Session.publish`, which stamps it with the
session id, the turn id and the next ``seq``, and hands it to the running turn and to live
subscribers. A subscriber that falls too far behind is dropped (its ``overflowed`` flag is
set) rather than slowing the turn down.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from hotplex.events import AgentEvent
from hotplex.interfaces import AgentProcess

__all__ = ["Session", "SessionInfo", "Subscription", "Turn"]


class Turn:
    """One prompt's run. Iterate it to get the turn's stamped events, ending with ``done``."""

    def __init__(
        self,
        prompt: str,
        *,
        request_id: str | None,
        user: str | None,
        turn_id: str | None = None,
        images: tuple[Path, ...] = (),
    ) -> None:
        self.turn_id = turn_id or f"turn_{uuid.uuid4().hex[:16]}"
        self.prompt = prompt
        #: image files shown to the agent with the prompt (not stored: a turn run again
        #: after a restart has the prompt, which names the files, without them)
        self.images = images
        self.request_id = request_id
        self.user = user
        self.created_at = time.time()
        self.started_at: float | None = None
        self.last_activity = time.monotonic()
        self.pending_permissions = 0
        self.timeout_reason: str | None = None
        self.interrupt_requested = False
        self.status: str | None = None
        self.stored_started = False  # stored as started when accepted: no start_turn
        self.stored_ended = False  # stored as finished together with its session
        self.synced: Awaitable[None] | None = None  # its record on disk (see Engine._accept)
        self.finished = asyncio.Event()
        self.completed = asyncio.Event()  # its ``done`` event was published
        self._events: asyncio.Queue[AgentEvent | None] = asyncio.Queue()

    def push(self, event: AgentEvent) -> None:
        self._events.put_nowait(event)
        if event.type == "done":
            self.status = str(event.data["status"])
            self.completed.set()

    def finish(self) -> None:
        if not self.finished.is_set():
            self.finished.set()
            self._events.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[AgentEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[AgentEvent]:
        while (event := await self._events.get()) is not None:
            yield event
        self._events.put_nowait(None)

    async def collect(self, timeout: float | None = None) -> list[AgentEvent]:
        """Every event of the turn (waits for its end)."""

        async def gather() -> list[AgentEvent]:
            return [event async for event in self]

        return await asyncio.wait_for(gather(), timeout)


class Subscription:
    """Live events of one session, on a bounded queue."""

    def __init__(self, session: Session, maxsize: int) -> None:
        self._session = session
        self.queue: asyncio.Queue[AgentEvent | None] = asyncio.Queue(maxsize)
        self.overflowed = False

    def offer(self, event: AgentEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self.close()

    def close(self) -> None:
        self._session.subscribers.discard(self)
        while True:
            try:
                self.queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()

    def __aiter__(self) -> AsyncIterator[AgentEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[AgentEvent]:
        while (event := await self.queue.get()) is not None:
            yield event


@dataclass(frozen=True)
class SessionInfo:
    """What the admin API and ``hotplex sessions`` show for a session."""

    session_id: str
    key: str
    address: str | None
    owner: str | None
    state: Literal["idle", "running", "stopped"]
    pid: int | None
    work_dir: str
    provider_session_id: str
    idle_seconds: float
    turns: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    queued: int
    last_seq: int


@dataclass
class Session:
    key: str
    session_id: str
    address: str | None
    owner: str | None
    provider_session_id: str
    work_dir: Path
    process: AgentProcess | None = None
    seq: int = 0
    turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    started_once: bool = False
    overrides: dict[str, str | None] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    last_active: float = field(default_factory=time.monotonic)
    current: Turn | None = None
    queue: asyncio.Queue[Turn] = field(default_factory=asyncio.Queue)
    subscribers: set[Subscription] = field(default_factory=set)
    worker: asyncio.Task[None] | None = None
    spawn_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    accept_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    publish_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # see Publisher.publish

    @property
    def busy(self) -> bool:
        return self.current is not None or not self.queue.empty()

    def publish(self, event: AgentEvent) -> AgentEvent:
        """Stamp the event and deliver it at once."""
        stamped = self.stamp(event)
        self.deliver(stamped)
        return stamped

    def stamp(self, event: AgentEvent) -> AgentEvent:
        """Place the event in the session's stream (next seq, the running turn's ids; a
        turn's stream ends with its ``done``, so what follows belongs to no turn)."""
        turn = self.current
        if turn is not None and turn.completed.is_set():
            turn = None
        self.seq += 1
        if event.type == "usage":
            self.input_tokens += int(event.data["input_tokens"])
            self.output_tokens += int(event.data["output_tokens"])
            self.cost_usd += float(event.data["cost_usd"])
        return event.stamped(
            session_id=self.session_id,
            turn_id=turn.turn_id if turn else "",
            seq=self.seq,
            request_id=turn.request_id if turn else None,
        )

    def deliver(self, stamped: AgentEvent) -> None:
        """Hand a stamped event to its turn and to the live subscribers."""
        turn = self.current
        if turn is not None and stamped.turn_id == turn.turn_id:
            turn.last_activity = time.monotonic()
            turn.push(stamped)
        for subscriber in list(self.subscribers):
            subscriber.offer(stamped)

    def subscribe(self, maxsize: int = 1000) -> Subscription:
        subscription = Subscription(self, maxsize)
        self.subscribers.add(subscription)
        return subscription

    def info(self) -> SessionInfo:
        alive = self.process is not None and self.process.alive
        return SessionInfo(
            session_id=self.session_id,
            key=self.key,
            address=self.address,
            owner=self.owner,
            state="running" if self.current else ("idle" if alive else "stopped"),
            pid=self.process.pid if alive and self.process else None,
            work_dir=str(self.work_dir),
            provider_session_id=self.provider_session_id,
            idle_seconds=0.0 if self.current else time.monotonic() - self.last_active,
            turns=self.turns,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost_usd=round(self.cost_usd, 6),
            queued=self.queue.qsize(),
            last_seq=self.seq,
        )
