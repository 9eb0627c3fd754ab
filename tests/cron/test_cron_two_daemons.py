"""Two real ``hotplex serve`` processes on one PostgreSQL database: one schedules, each due
time runs once; SIGKILL the scheduler and the other takes over, still once per due time."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotplex.client import DaemonClient
from hotplex.testing.daemon import Daemon
from hotplex.testing.databases import scratch_database
from hotplex.testing.fake_agent import write_wrapper

TOKEN = "admin-cron-0123456789"
JOBS = "/admin/v1/cron/jobs"


def write_config(tmp_path: Path, name: str, url: str) -> Path:
    config = {
        "engine": {"data_dir": str(tmp_path / name / "data"), "kill_grace": "1s"},
        "storage": {"url": url},
        "provider": {"binary": str(write_wrapper(tmp_path / name / "bin"))},
        "server": {"port": 0, "admin_token": TOKEN, "rate_limit": {"enabled": False}},
        "plugins": {"cron": {"min_interval": "1s", "lease_ttl": "2s"}},
    }
    path = tmp_path / name / "hotplex.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


async def ask(daemon: Daemon, method: str, path: str, body: Any = None) -> Any:
    client = DaemonClient(daemon.url, TOKEN)
    return await asyncio.to_thread(client.request, method, path, body)


async def until(condition: Any, timeout: float, what: str) -> Any:
    try:
        async with asyncio.timeout(timeout):
            while not (found := await condition()):
                await asyncio.sleep(0.2)
            return found
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@pytest.mark.postgres
@pytest.mark.timeout(150)
async def test_two_daemons_on_postgres_run_each_due_time_once_across_a_sigkill(
    tmp_path: Path,
) -> None:
    async with scratch_database("postgresql", tmp_path / "db") as url:
        daemons = [
            Daemon(write_config(tmp_path, name, url), env={"CLAUDE_CONFIG_DIR": str(tmp_path)})
            for name in ("a", "b")
        ]
        for daemon in daemons:
            await daemon.start()
        try:

            async def leaders() -> list[Daemon]:
                found = []
                for daemon in daemons:
                    alive = daemon.proc is not None and daemon.proc.returncode is None
                    if alive and (await ask(daemon, "GET", JOBS))["scheduler"]["leader"]:
                        found.append(daemon)
                return found

            leader = (await until(leaders, 20, "a scheduler"))[0]
            other = daemons[1] if leader is daemons[0] else daemons[0]
            job = {"name": "beat", "schedule": "every 1s", "prompt": "beat"}
            await ask(other, "POST", JOBS, job)  # added through the daemon that does not schedule

            async def runs() -> list[dict[str, Any]]:
                answer = await ask(other, "GET", f"{JOBS}/beat/runs?limit=1000")
                return list(answer["runs"])

            async def ok_runs(count: int) -> bool:
                return len([r for r in await runs() if r["status"] == "ok"]) >= count

            await until(lambda: ok_runs(3), 40, "three runs")
            assert await leaders() == [leader]
            await leader.kill()
            before = {r["id"] for r in await runs()}

            async def taken_over() -> bool:
                mine = [r for r in await runs() if r["id"] not in before and r["status"] == "ok"]
                return len(mine) >= 3

            await until(taken_over, 40, "the other daemon's runs")
            assert await leaders() == [other]
            every = await runs()
            dues = sorted(r["due_at"] for r in every)
            assert len(dues) == len(set(dues))  # each due time once, in both daemons' runs
            assert all(round(b - a, 3) >= 1.0 for a, b in itertools.pairwise(dues))
            assert len({r["holder"] for r in every}) == 2
        finally:
            for daemon in daemons:
                if daemon.proc is not None and daemon.proc.returncode is None:
                    assert await daemon.stop() == 0
