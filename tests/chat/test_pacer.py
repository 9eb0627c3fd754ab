"""The pacer on a clock the test drives."""

from __future__ import annotations

import asyncio

from hotplex.chat import Pacer


class Clock:
    """A monotonic clock that moves only when the pacer sleeps or a write takes time."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_writes_start_min_interval_after_the_previous_one_ended() -> None:
    clock = Clock()
    pacer = Pacer(2.0, clock=clock, sleep=clock.sleep)
    starts: list[float] = []

    async def write() -> None:
        starts.append(clock.now)
        clock.now += 0.5  # the call itself takes half a second

    for _ in range(4):
        await pacer.run(write)
    assert starts == [100.0, 102.5, 105.0, 107.5]
    assert clock.sleeps == [2.0, 2.0, 2.0]


async def test_defer_holds_the_next_write_back() -> None:
    clock = Clock()
    pacer = Pacer(1.0, clock=clock, sleep=clock.sleep)
    pacer.defer(30.0)
    assert pacer.wait_time() == 30.0
    await pacer.ready()
    assert clock.now == 130.0 and pacer.wait_time() == 0.0
    pacer.defer(0.5)  # a shorter deferral does not shorten a longer wait
    pacer.defer(0.1)
    assert pacer.wait_time() == 0.5


async def test_a_failed_write_still_starts_the_interval() -> None:
    clock = Clock()
    pacer = Pacer(1.0, clock=clock, sleep=clock.sleep)

    async def fail() -> None:
        raise ConnectionError

    try:
        await pacer.run(fail)
    except ConnectionError:
        pass
    assert pacer.wait_time() == 1.0


async def test_concurrent_writers_share_one_budget() -> None:
    clock = Clock()
    pacer = Pacer(1.0, clock=clock, sleep=clock.sleep)
    starts: list[float] = []

    async def write() -> None:
        starts.append(clock.now)
        await asyncio.sleep(0)

    await asyncio.gather(*(pacer.run(write) for _ in range(5)))
    assert starts == [100.0, 101.0, 102.0, 103.0, 104.0]
