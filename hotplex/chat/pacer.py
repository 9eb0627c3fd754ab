"""Keeping writes within the rates a platform allows.

Two limits, because platforms have two: a :class:`Pacer` per renderer keeps the writes of
one conversation ``min_update_interval`` apart (a platform limits the updates of one
message), and one :class:`Budget` per adapter, shared by all its pacers, keeps the writes
of every conversation under ``max_writes_per_minute`` (a platform limits a workspace) and
holds all of them back when the platform answers 429.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = ["Budget", "Pacer"]

T = TypeVar("T")
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(eq=False)
class _Waiter:
    first: bool
    overtaken: int = 0
    woken: asyncio.Event = field(default_factory=asyncio.Event)


class Budget:
    """A token bucket of ``per_minute`` writes (None: no limit), holding up to ``burst``
    tokens, shared by every writer of one platform; ``defer(seconds)`` stops all of them.

    Writes wait in one queue. A ``first`` write (one that makes a conversation's first
    visible text) goes ahead of waiting updates, so a new question never waits behind the
    streaming of other threads; an update is overtaken at most ``patience`` times, so
    updates are never starved (and an update carries all the text so far: the later it
    goes, the more it shows). Only the head of the queue sleeps."""

    def __init__(
        self,
        per_minute: float | None = None,
        *,
        burst: int = 3,
        patience: int = 3,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if per_minute is not None and per_minute <= 0:
            raise ValueError("per_minute must be positive")
        if burst < 1 or patience < 0:
            raise ValueError("burst must be at least 1 and patience not negative")
        self.per_minute = per_minute
        self.burst = burst
        self.patience = patience
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._stamp = clock()
        self._held = float("-inf")
        self._queue: list[_Waiter] = []
        self._sleeping = False

    def defer(self, seconds: float) -> None:
        """Let no write start sooner than ``seconds`` from now (a ``retry_after``)."""
        self._held = max(self._held, self._clock() + seconds)

    def held(self) -> float:
        """Seconds the last :meth:`defer` still holds every write back."""
        if self._held == float("-inf"):
            return 0.0  # never deferred: no need to read the clock
        return max(0.0, self._held - self._clock())

    def wait_time(self) -> float:
        """Seconds until a write could take a token (0: now)."""
        if self.per_minute is None and self._held == float("-inf"):
            return 0.0
        now = self._clock()
        wait = max(0.0, self._held - now)
        if self.per_minute is not None:
            rate = self.per_minute / 60.0
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * rate)
            wait = max(wait, (1.0 - self._tokens) / rate)
        self._stamp = now
        return wait

    async def take(self, *, first: bool = False) -> None:
        """Wait for this write's turn and spend one token on it."""
        waiter = _Waiter(first)
        self._enqueue(waiter)
        try:
            for _ in range(100_000):
                if self._queue[0] is waiter and not self._sleeping:
                    wait = self.wait_time()
                    if wait <= 0:
                        self._queue.pop(0)
                        if self.per_minute is not None:
                            self._tokens -= 1.0
                        return
                    self._sleeping = True
                    try:
                        await self._sleep(wait)
                    finally:
                        self._sleeping = False
                        self._wake_head()
                else:
                    await waiter.woken.wait()
                    waiter.woken.clear()
            raise AssertionError("the budget queue did not move")  # pragma: no cover
        finally:
            if waiter in self._queue:
                self._queue.remove(waiter)
            self._wake_head()

    def _enqueue(self, waiter: _Waiter) -> None:
        if not waiter.first:
            self._queue.append(waiter)
            return
        at = 0  # behind the first writes and the updates that were overtaken enough
        for index, queued in enumerate(self._queue):
            if queued.first or queued.overtaken >= self.patience:
                at = index + 1
        for queued in self._queue[at:]:
            queued.overtaken += 1
        self._queue.insert(at, waiter)

    def _wake_head(self) -> None:
        if self._queue:
            self._queue[0].woken.set()


class Pacer:
    """The writes of one renderer: one at a time, each starting at least ``min_interval``
    seconds after the previous one ended (ends, not starts: the platform sees the calls
    that far apart whatever their latency), and each taking a token of ``budget`` (the
    adapter's, shared by all its renderers; a private unlimited one by default).
    ``defer(seconds)`` holds this renderer back; ``defer(seconds, everyone=True)`` every
    writer of the budget, as a platform's ``retry_after`` asks. The clock is monotonic;
    tests may pass their own ``clock`` and ``sleep``."""

    def __init__(
        self,
        min_interval: float,
        *,
        budget: Budget | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.min_interval = min_interval
        self.budget = budget or Budget(clock=clock, sleep=sleep)
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._next = float("-inf")

    def wait_time(self) -> float:
        """Seconds until this renderer's interval (and any deferral) has passed."""
        return max(0.0, self._next - self._clock(), self.budget.held())

    def defer(self, seconds: float, *, everyone: bool = False) -> None:
        """Let no write of this renderer (``everyone``: of the budget) start sooner than
        ``seconds`` from now."""
        if everyone:
            self.budget.defer(seconds)
        self._next = max(self._next, self._clock() + seconds)

    async def ready(self) -> None:
        """Return once this renderer's interval has passed (the budget may still queue
        the write)."""
        for _ in range(1000):
            wait = self.wait_time()
            if wait <= 0:
                return
            await self._sleep(wait)

    async def run(self, write: Callable[[], Awaitable[T]], *, first: bool = False) -> T:
        """Wait for the turn of this write (``first``: it makes the conversation's first
        visible text, see :class:`Budget`), run it, and start the interval when it ends."""
        async with self._lock:
            await self.ready()
            await self.budget.take(first=first)
            try:
                return await write()
            finally:
                self._next = max(self._next, self._clock() + self.min_interval)
