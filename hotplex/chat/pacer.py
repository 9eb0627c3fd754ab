"""Keeping a renderer's writes within the rate a platform allows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["Pacer"]

T = TypeVar("T")


class Pacer:
    """At most one write at a time, each starting at least ``min_interval`` seconds after
    the previous one ended (ends, not starts: the platform sees the calls at least that
    far apart whatever their latency). ``defer(seconds)`` holds every write back longer, as
    a platform's ``retry_after`` asks. The clock is monotonic; tests may pass their own
    ``clock`` and ``sleep``. Share one pacer between renderers to share one budget."""

    def __init__(
        self,
        min_interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.min_interval = min_interval
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._next = float("-inf")

    def wait_time(self) -> float:
        """Seconds until the next write may start (0 when it may start now)."""
        return max(0.0, self._next - self._clock())

    def defer(self, seconds: float) -> None:
        """Let no write start sooner than ``seconds`` from now."""
        self._next = max(self._next, self._clock() + seconds)

    async def ready(self) -> None:
        """Return once a write may start (it may still have to queue for the lock)."""
        for _ in range(1000):
            wait = self.wait_time()
            if wait <= 0:
                return
            await self._sleep(wait)

    async def run(self, write: Callable[[], Awaitable[T]]) -> T:
        """Wait for the turn of this write, run it, and start the interval when it ends."""
        async with self._lock:
            await self.ready()
            try:
                return await write()
            finally:
                self._next = max(self._next, self._clock() + self.min_interval)
