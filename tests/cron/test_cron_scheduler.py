"""The scheduler in a running HotPlex: jobs fire on their own, misfires after a restart,
persistent sessions, config jobs, and the agent's follow-up."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

from cron_kit import Start, cron_config, start_cron, until
from hotplex_cron import plugin
from hotplex_cron.keys import CRON
from hotplex_cron.store import jobs_table
from sqlalchemy import update

from hotplex.agent_tools import AGENT_TOOLS
from hotplex.events import agent_event
from hotplex.storage.sql import SqlStorage
from hotplex.testing.fakes import FakeAgentProcess
from hotplex.testing.running import running_hotplex as start_hotplex


async def test_an_interval_job_fires_on_schedule_once_per_due_time(
    running_hotplex: Start,
) -> None:
    hp, cron = await start_cron(running_hotplex)
    await until(lambda: _true(cron.leader))
    await cron.add(
        {"name": "tick", "schedule": "every 1s", "prompt": "tick", "deliver_to": "fake:w/C9"},
        source="cli",
    )

    async def three_runs() -> bool:
        return len([r for r in await cron.history("tick") if r["status"] == "ok"]) >= 3

    await until(three_runs, timeout=15)
    runs = await cron.history("tick", limit=100)
    dues = sorted(r["due_at"] for r in runs)
    assert len(set(dues)) == len(dues)  # each due time once
    assert all(round(b - a, 3) == 1.0 for a, b in itertools.pairwise(dues))
    assert all(r["trigger"] == "schedule" for r in runs)
    assert hp.ops.texts("fake:w/C9")[0].startswith("echo: tick")
    job = await cron.describe("tick")
    assert job["next_fire"] is not None


async def _true(value: bool) -> bool:
    return value


async def test_a_daemon_down_across_three_due_times_follows_each_misfire_choice(
    tmp_path: Path,
) -> None:
    config = cron_config(
        jobs=[
            {"name": f"m-{choice}", "schedule": "every 1h", "prompt": choice, "misfire": choice}
            for choice in ("skip", "once", "all")
        ]
    )
    async with start_hotplex(tmp_path, config=config, plugins=[("cron", plugin)]) as hp:
        cron = hp.runtime.ctx.services.get(CRON)
        await until(lambda: _true(cron.leader))
        url = hp.runtime.settings.storage_url
    # while the daemon is down, 3.5 hours pass: move the jobs' past back by as much
    hours = 3.5 * 3600
    storage = SqlStorage(url)
    await storage.open()
    try:
        async with storage.write() as conn:
            await conn.execute(
                update(jobs_table).values(
                    anchor=jobs_table.c.anchor - hours, last_due=jobs_table.c.last_due - hours
                )
            )
    finally:
        await storage.close()
    async with start_hotplex(tmp_path, config=config, plugins=[("cron", plugin)]) as hp:
        cron = hp.runtime.ctx.services.get(CRON)

        async def settled() -> bool:
            runs = [r for j in ("skip", "once", "all") for r in await cron.history(f"m-{j}")]
            return len(runs) == 9 and all(r["status"] != "running" for r in runs)

        await until(settled, timeout=20)
        outcome = {
            choice: sorted((r["status"], r["trigger"]) for r in await cron.history(f"m-{choice}"))
            for choice in ("skip", "once", "all")
        }
        assert outcome == {
            "skip": [("skipped", "catch-up")] * 3,
            "once": [("ok", "catch-up"), ("skipped", "catch-up"), ("skipped", "catch-up")],
            "all": [("ok", "catch-up")] * 3,
        }
        once = await cron.history("m-once")
        assert once[0]["status"] == "ok"  # the latest missed time is the one that ran
        assert len(hp.provider.processes) == 4  # 1 + 3 runs, nothing more


async def test_a_persistent_session_remembers_the_previous_run(running_hotplex: Start) -> None:
    hp, cron = await start_cron(running_hotplex)
    await cron.add(
        {
            "name": "diary",
            "schedule": "every 1h",
            "session": "persistent",
            "prompt": "entry{% if last %} after {{ last.status }}: {{ last.excerpt }}{% endif %}",
        },
        source="cli",
    )

    def remember(process: FakeAgentProcess) -> Any:
        return agent_event("text", text=f"I was asked before: {process.prompts[:-1]}")

    await cron.run_now("diary", wait=True)
    hp.provider.queue_turn(remember)
    await cron.run_now("diary", wait=True)
    latest, first = await cron.history("diary")
    assert first["excerpt"] == "echo: entry"
    assert latest["excerpt"] == "I was asked before: ['entry']"
    assert len(hp.provider.processes) == 1  # one agent kept its context
    assert hp.provider.processes[0].prompts[1] == "entry after ok: echo: entry"
    assert first["session_id"] == latest["session_id"]


async def test_config_jobs_are_reconciled_and_owned_by_the_config(tmp_path: Path) -> None:
    first = cron_config(jobs=[{"name": "a", "schedule": "every 1h", "prompt": "a"},
                              {"name": "b", "schedule": "every 2h", "prompt": "b"}])
    async with start_hotplex(tmp_path, config=first, plugins=[("cron", plugin)]) as hp:
        cron = hp.runtime.ctx.services.get(CRON)
        await cron.add({"name": "mine", "schedule": "every 1h", "prompt": "x"}, source="cli")
        jobs = {j["name"]: j["source"] for j in await cron.list_jobs()}
        assert jobs == {"a": "config", "b": "config", "mine": "cli"}
        try:
            await cron.remove("a")
        except Exception as exc:
            assert "defined in the config file" in str(exc)
        else:
            raise AssertionError("a config job was removed through the API")
    second = cron_config(jobs=[{"name": "a", "schedule": "every 3h", "prompt": "a2"}])
    async with start_hotplex(tmp_path, config=second, plugins=[("cron", plugin)]) as hp:
        cron = hp.runtime.ctx.services.get(CRON)
        jobs = {j["name"]: j for j in await cron.list_jobs()}
        assert sorted(jobs) == ["a", "mine"]
        assert jobs["a"]["job"]["schedule"] == "every 3h"
        assert jobs["a"]["job"]["prompt"] == "a2"


async def test_an_agent_schedules_a_follow_up_and_it_fires(running_hotplex: Start) -> None:
    hp, cron = await start_cron(running_hotplex, agent_quota=1)
    await until(lambda: _true(cron.leader))
    incoming = await hp.adapter.dm("build it and check back later")
    await hp.ops.wait_for(lambda: any("echo: build" in t for t in hp.ops.texts()))
    session_id = next(s.session_id for s in hp.engine.sessions() if s.address == incoming.address)
    work_dir = next(s.work_dir for s in hp.engine.sessions() if s.session_id == session_id)
    Path(work_dir).mkdir(parents=True)  # the real agent CLI works there
    tools = hp.runtime.ctx.services.get(AGENT_TOOLS)
    soon = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 1.5))
    result = await tools.call(
        {
            "name": "schedule",
            "arguments": {"schedule": f"at {soon}", "prompt": "check the build", "name": "check"},
        },
        session=session_id,
    )
    assert result["isError"] is False, result
    assert "Scheduled check" in result["content"][0]["text"]
    await hp.ops.wait_for(
        lambda: any("echo: check the build" in t for t in hp.ops.texts(incoming.address)),
        timeout=10,
    )
    [run] = await cron.history("check")
    assert run["status"] == "ok" and run["trigger"] == "schedule"
    job = await cron.describe("check")
    assert job["source"] == "agent" and job["job"]["policy"] == "deny"
    assert job["job"]["work_dir"] == work_dir
    # the quota: one job per session here
    again = await tools.call(
        {"name": "schedule", "arguments": {"schedule": "every 1h", "prompt": "more"}},
        session=session_id,
    )
    assert again["isError"] is True
    assert "agent_quota" in again["content"][0]["text"]


async def test_a_cron_runs_agent_cannot_schedule_more_jobs(running_hotplex: Start) -> None:
    hp, cron = await start_cron(running_hotplex)
    await cron.add(
        {"name": "keeper", "schedule": "every 1h", "prompt": "p", "session": "persistent"},
        source="cli",
    )
    await cron.run_now("keeper", wait=True)
    [run] = await cron.history("keeper")
    tools = hp.runtime.ctx.services.get(AGENT_TOOLS)
    result = await tools.call(
        {"name": "schedule", "arguments": {"schedule": "every 1h", "prompt": "again"}},
        session=run["session_id"],
    )
    assert result["isError"] is True
    assert "a cron run cannot schedule jobs" in result["content"][0]["text"]
    assert [j["name"] for j in await cron.list_jobs()] == ["keeper"]
