"""Leases on SQLite and PostgreSQL: one holder at a time, with expiry, also when storage
instances and processes race for the same lease (the winners are counted exactly)."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter

import pytest
from storage_support import WORKER

from hotplex.storage.sql import SqlStorage


class Clock:
    """The leases' time, moved by the test (no sleeps)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def opened(url: str, clock: Clock | None = None) -> SqlStorage:
    store = SqlStorage(url) if clock is None else SqlStorage(url, clock=clock)
    await asyncio.wait_for(store.open(), timeout=30)
    return store


async def test_one_holder_at_a_time(db_url: str) -> None:
    clock = Clock()
    store = await opened(db_url, clock)
    try:
        assert await store.acquire_lease("cron", "a", 30)
        assert not await store.acquire_lease("cron", "b", 30)
        assert await store.acquire_lease("cron", "a", 30)  # the holder again: renewed
        assert await store.acquire_lease("other", "b", 30)  # leases are per name
        assert await store.renew_lease("cron", "a", 30)
        assert not await store.renew_lease("cron", "b", 30)
        assert not await store.release_lease("cron", "b")
        assert not await store.acquire_lease("cron", "b", 30)
        assert await store.release_lease("cron", "a")
        assert not await store.release_lease("cron", "a")  # once
        assert not await store.renew_lease("cron", "a", 30)
        assert await store.acquire_lease("cron", "b", 30)  # free at once after release
    finally:
        await store.close()


async def test_a_lease_expires(db_url: str) -> None:
    clock = Clock()
    store = await opened(db_url, clock)
    try:
        assert await store.acquire_lease("delivery", "a", 10)
        clock.now += 9.9
        assert not await store.acquire_lease("delivery", "b", 10)
        assert await store.renew_lease("delivery", "a", 10)  # until now + 10
        clock.now += 9.9
        assert not await store.acquire_lease("delivery", "b", 10)
        clock.now += 0.2  # past the renewed expiry
        assert not await store.renew_lease("delivery", "a", 10)  # lost: stop the work
        assert await store.acquire_lease("delivery", "b", 10)
        assert not await store.release_lease("delivery", "a")
        assert await store.renew_lease("delivery", "b", 10)
    finally:
        await store.close()


async def test_bad_arguments_are_refused(db_url: str) -> None:
    store = await opened(db_url)
    try:
        for args in (("", "a", 1.0), ("n", "", 1.0), ("n", "a", 0.0), ("n", "a", -1.0)):
            with pytest.raises(ValueError):
                await store.acquire_lease(*args)
    finally:
        await store.close()


async def test_storage_instances_racing_have_exactly_one_winner(db_url: str) -> None:
    stores = [await opened(db_url) for _ in range(4)]
    try:
        for round_ in range(10):
            name = f"race-{round_}"
            won = await asyncio.wait_for(
                asyncio.gather(
                    *(s.acquire_lease(name, f"holder-{i}", 60) for i, s in enumerate(stores))
                ),
                timeout=30,
            )
            assert won.count(True) == 1, (name, won)
    finally:
        for store in stores:
            await store.close()


async def test_processes_racing_have_exactly_one_winner_per_lease(db_url: str) -> None:
    await (await opened(db_url)).close()  # migrated once, so the racers only race for leases
    rounds, racers = 25, 3
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            "lease",
            db_url,
            f"process-{i}",
            str(rounds),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for i in range(racers)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line.strip() == b"ready", line
        for proc in procs:  # start them together
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        outputs = await asyncio.wait_for(
            asyncio.gather(*(proc.communicate() for proc in procs)), 60
        )
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    wins: Counter[str] = Counter()
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
        lines = out.decode().split()
        assert lines[-1] == "done"
        wins.update(line for line in out.decode().splitlines() if line.startswith("won "))
    assert wins == Counter({f"won race-{i}": 1 for i in range(rounds)})
