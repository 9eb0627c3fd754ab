"""The pacer on a clock the test drives."""

from __future__ import annotations

import asyncio
import bisect
import itertools

from virtual_time import VirtualTime

from hotplex.chat import Budget, Pacer


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


# -- per-renderer pacing and the shared budget, on virtual time ---------------------------


def spaced(times: list[float], gap: float) -> bool:
    return all(b - a >= gap - 1e-9 for a, b in itertools.pairwise(times))


def most_in_a_window(times: list[float], window: float) -> int:
    return max(bisect.bisect_left(times, t + window - 1e-9) - i for i, t in enumerate(times))


async def test_each_renderer_keeps_its_own_interval_and_renderers_do_not_queue() -> None:
    clock = VirtualTime()
    budget = Budget(clock=clock, sleep=clock.sleep)  # no shared limit
    writes: dict[int, list[float]] = {0: [], 1: [], 2: []}

    async def renderer(n: int) -> None:
        pacer = Pacer(1.2, budget=budget, clock=clock, sleep=clock.sleep)
        for _ in range(5):
            await pacer.run(lambda: write(n))

    async def write(n: int) -> None:
        writes[n].append(clock.now)
        await clock.sleep(0.1)  # the call's latency

    await clock.run(*(renderer(n) for n in writes))
    for times in writes.values():
        assert spaced(times, 1.3)  # 1.2 s from the end of one write (0.1 s) to the next
        assert times[0] == 0.0  # the first write of every conversation waits for nobody
    assert clock.now < 6.0  # three conversations side by side, not one queue (~19.5 s)


async def test_the_shared_budget_is_never_exceeded_in_any_window() -> None:
    clock = VirtualTime()
    budget = Budget(60.0, burst=4, clock=clock, sleep=clock.sleep)
    starts: list[float] = []

    async def renderer(n: int) -> None:
        pacer = Pacer(0.5, budget=budget, clock=clock, sleep=clock.sleep)
        for i in range(12):
            await pacer.run(lambda: record(), first=(i == 0 and n % 2 == 0))

    async def record() -> None:
        starts.append(clock.now)

    await clock.run(*(renderer(n) for n in range(8)))
    starts.sort()
    assert len(starts) == 96
    assert most_in_a_window(starts, 60.0) <= 60 + 4  # the rate plus the burst
    assert most_in_a_window(starts, 1.0) <= 1 + 4
    assert most_in_a_window(starts, 10.0) <= 10 + 4
    assert starts[-1] >= (96 - 4) / 1.0 - 1e-6  # and no faster on the whole


async def test_a_first_write_overtakes_queued_updates() -> None:
    clock = VirtualTime()
    budget = Budget(60.0, burst=1, clock=clock, sleep=clock.sleep)
    order: list[str] = []

    async def write(name: str, *, first: bool, after: float) -> None:
        await clock.sleep(after)
        pacer = Pacer(1.0, budget=budget, clock=clock, sleep=clock.sleep)
        await pacer.run(lambda: note(name), first=first)

    async def note(name: str) -> None:
        order.append(name)

    updates = [write(f"update{i}", first=False, after=0.0) for i in range(5)]
    await clock.run(*updates, write("first", first=True, after=0.5))
    # update0 took the only token at 0 s; the new question waits 0.5 s, not 4.5 s
    assert order[:2] == ["update0", "first"], order
    assert order[2:] == ["update1", "update2", "update3", "update4"]


async def test_updates_are_not_starved_by_a_stream_of_first_writes() -> None:
    clock = VirtualTime()
    budget = Budget(60.0, burst=1, patience=2, clock=clock, sleep=clock.sleep)
    order: list[str] = []

    async def write(name: str, *, first: bool, after: float) -> None:
        await clock.sleep(after)
        await budget.take(first=first)
        order.append(name)

    firsts = [write(f"first{i}", first=True, after=0.1 + i * 0.01) for i in range(6)]
    await clock.run(write("u0", first=False, after=0.0), write("u1", first=False, after=0.0),
                    *firsts)  # fmt: skip
    # u0 takes the burst token; u1 is overtaken twice (its patience), then goes
    assert order[:4] == ["u0", "first0", "first1", "u1"], order


async def test_a_rate_limit_holds_back_every_renderer_of_the_budget() -> None:
    clock = VirtualTime()
    budget = Budget(clock=clock, sleep=clock.sleep)
    a = Pacer(0.5, budget=budget, clock=clock, sleep=clock.sleep)
    b = Pacer(0.5, budget=budget, clock=clock, sleep=clock.sleep)
    starts: list[float] = []

    async def record() -> None:
        starts.append(clock.now)

    async def second() -> None:
        await clock.sleep(1.0)
        await b.run(record)

    a.defer(30.0, everyone=True)  # a 429 answered to a's write
    await clock.run(a.run(record), second())
    assert starts == [30.0, 30.0]
    a.defer(5.0)  # a renderer's own backoff holds back only that renderer
    await clock.run(a.run(record), b.run(record))
    assert starts[2:] == [30.5, 35.0]  # b: only its own interval after its write at 30 s


def test_a_budget_refuses_nonsense() -> None:
    for per_minute, burst in ((0.0, 3), (-1.0, 3), (60.0, 0)):
        try:
            Budget(per_minute, burst=burst)
        except ValueError:
            continue
        raise AssertionError(f"accepted {per_minute}, {burst}")
