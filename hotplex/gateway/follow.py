"""Stored events of a session after a point, then its live events: no gap, no duplicate.

The live subscription is taken first, and in the same step (no await in between) the
session's last ``seq`` (the *mark*) and its running turn are noted. Then the stored events
``since < seq <= mark`` are replayed, and after them the buffered live events with
``seq > mark``. The storage sink runs behind the engine, by milliseconds or, under load,
by seconds: the replay first waits (up to ``COMMIT_WAIT``) until the sink reports the mark
committed, so no event between what storage holds and the mark is skipped; when it does not
come in time the client gets a retryable ``storage_unavailable`` error rather than a silent
gap. Without a storage sink (a storage plugin that feeds itself) a replay that ends short of
the mark reads again for ``CATCH_UP`` seconds. ``text_delta`` events are not stored; they
are missing from replays by design (their ``text`` is stored).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterable
from contextlib import aclosing
from typing import Protocol

from hotplex.engine import Engine, Subscription
from hotplex.errors import StorageError
from hotplex.events import AgentEvent
from hotplex.gateway.frames import GatewayError
from hotplex.interfaces import Storage
from hotplex.storage.sink import StorageSink

__all__ = ["Follow", "Receiver", "open_follow", "relay_follow", "relay_turn"]

log = logging.getLogger(__name__)

PAGE = 500
#: How long one storage read may take.
READ_TIMEOUT = 10.0
#: How long a replay waits for the storage sink to commit what the engine already sent.
COMMIT_WAIT = 15.0
#: Without a storage sink: how long a replay reads again to catch up with the engine.
CATCH_UP = 1.0
CATCH_UP_POLL = 0.02


class Receiver(Protocol):
    """Where relayed events go: one client's view of one session."""

    def offer(self, event: AgentEvent) -> bool:
        """Queue a live event without waiting; False when the client is gone."""
        ...

    async def put(self, event: AgentEvent) -> bool:
        """Queue a replayed event, waiting a bounded time for room; False when gone."""
        ...

    def error(self, code: str, message: str, *, retryable: bool = False) -> None: ...


async def read_events(
    storage: Storage, session_id: str, since: int, limit: int
) -> list[AgentEvent]:
    """Stored events, or GatewayError ``storage_unavailable`` (failed or took too long)."""
    try:
        return await asyncio.wait_for(
            storage.read_events(session_id, since_seq=since, limit=limit), READ_TIMEOUT
        )
    except (TimeoutError, StorageError) as exc:
        log.warning("reading the events of %s failed: %r", session_id, exc)
        raise GatewayError(
            "storage_unavailable",
            "Stored events cannot be read now; try again.",
            status=503,
            retryable=True,
        ) from None


class Follow:
    def __init__(
        self,
        session_id: str,
        since: int,
        storage: Storage | None,
        subscription: Subscription | None,
        mark: int,
        running_turn: str | None,
        sink: StorageSink | None = None,
    ) -> None:
        self.session_id = session_id
        self.sink = sink
        self.since = since
        self.storage = storage
        self.subscription = subscription
        self.mark = mark
        self.running_turn = running_turn

    @property
    def lost(self) -> bool:
        """The live subscription overflowed while the replay ran: events were dropped."""
        return self.subscription is not None and self.subscription.overflowed

    async def stored(self) -> AsyncGenerator[AgentEvent, None]:
        """Stored events with ``since < seq <= mark`` (every one when nothing is live)."""
        if self.storage is None:
            return
        upper = self.mark if self.subscription is not None else None
        confirmed = False  # the sink says storage holds everything up to the mark
        if upper is not None and self.sink is not None:
            if upper > self.since:
                await self._committed(upper)
            confirmed = True
        last = self.since
        deadline = time.monotonic() + CATCH_UP
        while True:
            page = await read_events(self.storage, self.session_id, last, PAGE)
            beyond = False
            for event in page:
                if upper is not None and event.seq > upper:
                    beyond = True
                    break
                if event.seq > last:
                    last = event.seq
                    yield event
            if len(page) == PAGE and not beyond:
                continue
            if upper is None or beyond or last >= upper or confirmed:
                return
            if time.monotonic() >= deadline:
                log.warning("replay of %s ends at %d, short of %d", self.session_id, last, upper)
                return
            await asyncio.sleep(CATCH_UP_POLL)

    async def _committed(self, seq: int) -> None:
        assert self.sink is not None
        try:
            await asyncio.wait_for(self.sink.committed(self.session_id, seq), COMMIT_WAIT)
        except (TimeoutError, StorageError) as exc:
            log.warning("events of %s up to %d are not stored: %r", self.session_id, seq, exc)
            raise GatewayError(
                "storage_unavailable",
                "Recent events are not stored yet, so they cannot be replayed; try again.",
                status=503,
                retryable=True,
            ) from None

    async def live(self) -> AsyncGenerator[AgentEvent, None]:
        """Live events after the mark, until the subscription ends."""
        if self.subscription is None:
            return
        async for event in self.subscription:
            if event.seq > self.mark:
                yield event

    def close(self) -> None:
        if self.subscription is not None:
            self.subscription.close()


async def open_follow(
    engine: Engine,
    storage: Storage | None,
    session_id: str,
    since: int,
    maxsize: int,
    sink: StorageSink | None = None,
) -> Follow | None:
    """Subscribe to ``session_id`` and note where the replay ends; None when the session is
    neither live nor stored."""
    session = engine.get(session_id)
    if session is None:
        known = storage is not None and bool(await read_events(storage, session_id, 0, 1))
        session = engine.get(session_id)  # it may have started meanwhile
        if session is None:
            return Follow(session_id, since, storage, None, 0, None) if known else None
    subscription = session.subscribe(maxsize)
    running = session.current.turn_id if session.current is not None else None
    return Follow(session_id, since, storage, subscription, session.seq, running, sink)


async def relay_follow(
    follow: Follow, receiver: Receiver, *, until_turn_ends: bool, report_unstored: bool = True
) -> None:
    """Replay, then relay live events (``until_turn_ends``: only until the turn that was
    running when the follow began has sent ``done``; at once when none was running).
    ``report_unstored``: say so when the replay cannot be had (no storage)."""
    try:
        if report_unstored and follow.storage is None and follow.since < follow.mark:
            receiver.error(
                "replay_unavailable",
                f"Events after seq {follow.since} are not stored (no storage is configured); "
                "only live events follow.",
            )
        async with aclosing(follow.stored()) as stored:
            async for event in stored:
                if not await receiver.put(event):
                    return
        if until_turn_ends and follow.running_turn is None:
            return
        async with aclosing(follow.live()) as live:
            async for event in live:
                if not receiver.offer(event):
                    return
                ended = event.type == "done" and event.turn_id == follow.running_turn
                if until_turn_ends and ended:
                    return
                await asyncio.sleep(0)  # let the client's writer take its turn
        if follow.lost:
            receiver.error(
                "subscription_lost",
                "Too many events arrived while the replay ran; subscribe again.",
                retryable=True,
            )
    except GatewayError as error:
        receiver.error(error.code, error.message, retryable=error.retryable)
    finally:
        follow.close()


async def relay_turn(events: AsyncIterable[AgentEvent], receiver: Receiver) -> None:
    """Relay a turn's events as they come; stop when the client is gone (the turn goes on)."""
    async for event in events:
        if not receiver.offer(event):
            return
        await asyncio.sleep(0)  # let the client's writer take its turn
