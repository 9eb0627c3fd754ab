"""Two daemons on one database: only the lease holder schedules, the other takes over when
the holder stops, and every due time runs once (PostgreSQL, and SQLite for the race)."""

from __future__ import annotations

import asyncio
import itertools
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from cron_kit import cron_config, until
from hotplex_cron import plugin
from hotplex_cron.keys import CRON
from hotplex_cron.service import CronService

from hotplex.testing.databases import scratch_database
from hotplex.testing.running import RunningHotPlex
from hotplex.testing.running import running_hotplex as start_hotplex

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def service(hp: RunningHotPlex) -> CronService:
    return hp.runtime.ctx.services.get(CRON)


async def _any(*services: CronService) -> bool:
    return any(s.leader for s in services)


@pytest.mark.postgres
@pytest.mark.timeout(90)
async def test_two_daemons_on_postgres_run_each_due_time_once_and_take_over(
    tmp_path: Path,
) -> None:
    async with scratch_database("postgresql", tmp_path) as url, AsyncExitStack() as stack:
        config = {**cron_config(lease_ttl="1.5s"), "storage": {"url": url}}
        daemons = [
            await stack.enter_async_context(
                start_hotplex(tmp_path / name, config=config, plugins=[("cron", plugin)])
            )
            for name in ("a", "b")
        ]
        first, second = (service(hp) for hp in daemons)
        await until(lambda: _any(first, second))
        await asyncio.sleep(0)
        assert [first.leader, second.leader].count(True) == 1
        leader, other = (first, second) if first.leader else (second, first)
        await other.add(
            {"name": "beat", "schedule": "every 1s", "prompt": "beat", "deliver_to": "storage"},
            source="cli",
        )

        async def ok_runs(count: int) -> bool:
            runs = await leader.history("beat", limit=100)
            return len([r for r in runs if r["status"] == "ok"]) >= count

        await until(lambda: ok_runs(3), timeout=20)  # the holder follows a job added elsewhere
        # the holder stops without giving the lease back (as if it died): the other takes over
        scheduler = leader.scheduler
        scheduler._lease_task.cancel()  # type: ignore[union-attr]
        scheduler.timer.pause()
        scheduler.leader = False
        before = len(await other.history("beat", limit=100))
        await until(lambda: _any(other), timeout=10)

        async def more() -> bool:
            runs = await other.history("beat", limit=100)
            mine = [r for r in runs if r["holder"] == other.holder and r["status"] == "ok"]
            return len(runs) >= before + 3 and len(mine) >= 2

        await until(more, timeout=20)
        runs = await other.history("beat", limit=1000)
        dues = sorted(r["due_at"] for r in runs)
        assert len(dues) == len(set(dues))  # no due time twice
        assert all(round(b - a, 3) >= 1.0 for a, b in itertools.pairwise(dues))
        assert {r["holder"] for r in runs} == {leader.holder, other.holder}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_two_daemons_planning_the_same_job_at_once_claim_each_time_once(
    tmp_path: Path, backend: str
) -> None:
    async with scratch_database(backend, tmp_path / "db") as url, AsyncExitStack() as stack:
        config = {**cron_config(), "storage": {"url": url}}
        first, second = [
            service(
                await stack.enter_async_context(
                    start_hotplex(tmp_path / name, config=config, plugins=[("cron", plugin)])
                )
            )
            for name in ("a", "b")
        ]
        await first.add({"name": "race", "schedule": "every 1h", "prompt": "r"}, source="cli")
        row = await first.store.job("race")
        assert row is not None
        # three hours of fire times came due: both daemons plan them at the same moment
        from dataclasses import replace

        past = replace(row, anchor=row.anchor - 3 * 3600 - 10, last_due=row.anchor - 3 * 3600 - 10)
        await asyncio.gather(first.scheduler.plan(past), second.scheduler.plan(past))

        async def settled() -> bool:
            runs = await first.history("race")
            return len(runs) == 3 and all(r["status"] != "running" for r in runs)

        await until(settled, timeout=20)
        runs = await first.history("race")
        assert len({r["due_at"] for r in runs}) == 3
