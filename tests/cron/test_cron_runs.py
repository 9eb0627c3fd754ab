"""A run goes through core's chat bridge and its answer reaches its targets."""

from __future__ import annotations

from pathlib import Path

from cron_kit import Start, start_cron, until

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
    web_session = hp.engine.session_id("web:tester/s1")

    async def delivered() -> bool:  # stored by the storage sink, off the hot path
        web = await hp.engine.history(web_session)
        texts = [e.data["text"] for e in web if e.type == "message"]
        return bool(texts) and texts[0].startswith(runs[0]["excerpt"])

    await until(delivered)
    storage = hp.runtime.ctx.services.get(STORAGE)

    async def audited() -> bool:
        return bool(await storage.read_audit(types={"cron.run"}))

    await until(audited)
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


async def test_a_try_past_the_timeout_is_stopped_and_retried(running_hotplex: Start) -> None:
    hp, cron = await start_cron(running_hotplex)
    await cron.add(
        {
            "name": "slow",
            "schedule": "every 1h",
            "prompt": "go",
            "timeout": "0.5s",
            "retries": 1,
            "backoff": 0,
            "deliver_to": "fake:w/C3",
        },
        source="cli",
    )
    hp.provider.queue_turn(agent_event("status", text="hang"))  # hangs until interrupted
    await cron.run_now("slow", wait=True)
    [run] = await cron.history("slow")
    assert (run["status"], run["attempts"]) == ("ok", 2)
    assert "try 2" in hp.ops.texts("fake:w/C3")[0]
    await cron.edit("slow", {"retries": 0})
    hp.provider.queue_turn(agent_event("status", text="hang"))
    await cron.run_now("slow", wait=True)
    latest = (await cron.history("slow"))[0]
    assert (latest["status"], latest["attempts"]) == ("timeout", 1)
    assert latest["error"] == "stopped after the timeout (0.5 s)"
    assert hp.ops.texts("fake:w/C3")[-1].startswith("*cron job slow timed out*")
    assert [s for s in hp.engine.sessions() if s.key.startswith("cron:")] == []


async def test_a_prompt_that_does_not_render_fails_the_run(running_hotplex: Start) -> None:
    hp, cron = await start_cron(running_hotplex)
    await cron.add(
        {"name": "bad", "schedule": "every 1h", "prompt": "{{ nothing.here }}"}, source="cli"
    )
    await cron.run_now("bad", wait=True)
    [run] = await cron.history("bad")
    assert run["status"] == "failed"
    assert "the prompt template does not render" in run["error"]
    sandboxed = "{{ job.__class__.__mro__[1].__subclasses__() }}"
    await cron.edit("bad", {"prompt": sandboxed})
    await cron.run_now("bad", wait=True)
    assert "does not render" in (await cron.history("bad"))[0]["error"]
    assert hp.provider.processes == []


async def test_policies_allow_listed_tools_and_route_others_to_a_person(
    running_hotplex: Start,
) -> None:
    hp, cron = await start_cron(running_hotplex)
    await cron.add(
        {
            "name": "allowed",
            "schedule": "every 1h",
            "prompt": "x",
            "policy": {"allow_tools": ["Bash"]},
        },
        source="cli",
    )
    hp.provider.queue_turn(ToolCall("Bash", {"command": "make"}, output="built", say_result=True))
    await cron.run_now("allowed", wait=True)
    [run] = await cron.history("allowed")
    assert (run["status"], run["denied"], run["excerpt"]) == ("ok", [], "tool said: built")

    await cron.add(
        {
            "name": "routed",
            "schedule": "every 1h",
            "prompt": "x",
            "policy": {"route_to": "fake:w/ops", "approvers": ["fake:boss"]},
            "deliver_to": "fake:w/ops",
        },
        source="cli",
    )
    hp.provider.queue_turn(ToolCall("Bash", {"command": "deploy"}, output="done", say_result=True))
    started = await cron.run_now("routed")
    await hp.ops.wait_for(lambda: any(c[0] == "ask_approval" for c in hp.ops.calls))
    [card] = [c for c in hp.ops.calls if c[0] == "ask_approval"]
    assert card[1] == "fake:w/ops"  # the card is shown where the policy routes it
    await hp.bridge.decide(card[2], "allow", by="fake:boss")

    async def finished() -> bool:
        runs = await cron.history("routed")
        return bool(runs) and runs[0]["status"] != "running"

    await until(finished)
    [run] = await cron.history("routed")
    assert run["id"] == started["run_id"]
    assert (run["status"], run["excerpt"]) == ("ok", "tool said: done")
    await hp.ops.wait_for(lambda: any("tool said: done" in t for t in hp.ops.texts("fake:w/ops")))


async def test_a_persistent_job_moved_elsewhere_starts_a_new_session_there(
    running_hotplex: Start, tmp_path: Path
) -> None:
    hp, cron = await start_cron(running_hotplex)
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    await cron.add(
        {"name": "p", "schedule": "every 1h", "prompt": "x", "session": "persistent",
         "work_dir": str(first)},
        source="cli",
    )  # fmt: skip
    await cron.run_now("p", wait=True)
    await cron.edit("p", {"work_dir": str(second)})
    await cron.run_now("p", wait=True)
    assert [r["status"] for r in await cron.history("p")] == ["ok", "ok"]
    assert [p.spec.work_dir for p in hp.provider.processes] == [first.resolve(), second.resolve()]
    await cron.remove("p")
    assert [s for s in hp.engine.sessions() if s.key.startswith("cron:")] == []
