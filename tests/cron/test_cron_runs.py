"""A run goes through core's chat bridge and its answer reaches its targets."""

from __future__ import annotations

from pathlib import Path

from cron_kit import Start, start_cron

from hotplex.events import agent_event
from hotplex.services import STORAGE
from hotplex.testing.fakes import ToolCall


async def test_run_now_answers_in_a_fake_chat_and_the_web_chat(running_hotplex: Start) -> None:
    hp, cron = await start_cron(running_hotplex)
    await cron.add(
        {
            "name": "report",
            "schedule": "0 9 * * *",
            "prompt": "report for {{ scheduled.strftime('%Y') }}",
            "deliver_to": ["fake:w/C1", "web:tester/s1", "webhook"],
        },
        source="cli",
    )
    started = await cron.run_now("report", wait=True)
    runs = await cron.history("report")
    assert [r["status"] for r in runs] == ["ok"]
    year = runs[0]["excerpt"].removeprefix("echo: report for ")
    assert year.isdigit()
    assert runs[0]["id"] == started["run_id"]
    assert runs[0]["excerpt"] in hp.ops.texts("fake:w/C1")[0]
    web = await hp.engine.history(hp.engine.session_id("web:tester/s1"))
    delivered = [e.data["text"] for e in web if e.type == "message"]
    assert delivered[0].startswith(runs[0]["excerpt"])
    storage = hp.runtime.ctx.services.get(STORAGE)
    audit = await storage.read_audit(types={"cron.run"})
    assert audit[0].event.data["status"] == "ok"
    assert audit[0].event.data["job"] == "report"


async def test_a_fresh_run_leaves_no_session_and_no_work_directory(
    running_hotplex: Start,
) -> None:
    hp, cron = await start_cron(running_hotplex)
    await cron.add({"name": "fresh", "schedule": "every 1h", "prompt": "hi"}, source="cli")
    await cron.run_now("fresh", wait=True)
    await cron.run_now("fresh", wait=True)
    assert [r["status"] for r in await cron.history("fresh")] == ["ok", "ok"]
    assert [s for s in hp.engine.sessions() if s.key.startswith("cron:")] == []
    storage = hp.runtime.ctx.services.get(STORAGE)
    assert [s for s in await storage.load_sessions() if s.key.startswith("cron:")] == []
    root = hp.runtime.settings.engine.resolved_work_dir
    assert not root.exists() or list(root.iterdir()) == []
    assert len(hp.provider.processes) == 2 and len(hp.provider.closed) == 2


async def test_a_job_works_in_its_work_directory(running_hotplex: Start, tmp_path: Path) -> None:
    hp, cron = await start_cron(running_hotplex)
    project = tmp_path / "project"
    project.mkdir()
    await cron.add(
        {"name": "proj", "schedule": "every 1h", "prompt": "hi", "work_dir": str(project)},
        source="cli",
    )
    await cron.run_now("proj", wait=True)
    assert hp.provider.processes[0].spec.work_dir == project.resolve()
    assert project.is_dir()


async def test_a_denied_tool_and_a_failure_are_told_at_the_targets(
    running_hotplex: Start,
) -> None:
    hp, cron = await start_cron(running_hotplex)
    await cron.add(
        {"name": "risky", "schedule": "every 1h", "prompt": "clean up", "deliver_to": "fake:w/C2"},
        source="cli",
    )
    hp.provider.queue_turn(
        ToolCall("Bash", {"command": "rm -rf build"}, say_result=True),
        agent_event("text", text="could not clean"),
    )
    await cron.run_now("risky", wait=True)
    [run] = await cron.history("risky")
    assert run["denied"] == ["Bash"]
    shown = hp.ops.texts("fake:w/C2")[0]
    assert "Denied tools (unattended policy): Bash" in shown
    failure = agent_event("error", code="boom", message="the API failed", retryable=False)
    hp.provider.queue_turn(failure)
    await cron.run_now("risky", wait=True)
    latest = (await cron.history("risky"))[0]
    assert latest["status"] == "failed"
    assert "the API failed" in latest["error"]
    assert "cron job risky failed" in hp.ops.texts("fake:w/C2")[-1]
