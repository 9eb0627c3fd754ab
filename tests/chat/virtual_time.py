"""Virtual time for tests of many concurrent sleepers (pacers sharing a budget)."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable


class VirtualTime:
    """A clock for many concurrent sleepers: time jumps to the earliest wake-up once every
    task is blocked (after a few event-loop turns), so waits need no real time."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._count = 0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self._count += 1
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), self._count, future))
        await future

    async def run(self, *coroutines: Awaitable[object]) -> None:
        """Run ``coroutines`` to the end, moving time whenever all of them wait."""
        tasks = [asyncio.ensure_future(c) for c in coroutines]
        for _ in range(100_000):
            for _ in range(20):
                await asyncio.sleep(0)
            if all(t.done() for t in tasks):
                break
            assert self._sleepers, "deadlock: every task waits and nobody sleeps"
            at, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, at)
            future.set_result(None)
        for task in tasks:
            task.result()
