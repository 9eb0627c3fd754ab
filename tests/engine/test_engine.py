"""Engine logic with the in-process FakeProvider: sessions, stamping, busy policies, pool
limits, timers, approvals and prewarm."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hotplex.engine.approvals import ADMIN
from hotplex.engine.engine import Engine
from hotplex.errors import AlreadyDecidedError, NotAuthorizedError, SessionBusyError
from hotplex.events import AgentEvent, AuditEvent, agent_event
from hotplex.testing.fakes import FakeProvider, ToolCall
from hotplex.testing.turns import next_event

Settings = Callable[..., Any]


def types(events: list[AgentEvent]) -> list[str]:
    return [e.type for e in events]


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_turn_events_are_stamped_in_order(make_settings: Settings) -> None:
    provider = FakeProvider()
    async with Engine(make_settings(), provider) as engine:
        turn = await engine.execute("web:k/s1", "hello", request_id="r1")
        events = await turn.collect(5)
    assert types(events) == ["session", "text_delta", "text_delta", "text", "usage", "done"]
    assert events[0].data == {"state": "started"}
    assert [e.seq for e in events] == list(range(1, 7))
    session_id = str(uuid.uuid5(make_settings().engine.namespace, "web:k/s1"))
    assert {e.session_id for e in events} == {session_id}
    assert {e.turn_id for e in events} == {turn.turn_id}
    assert {e.request_id for e in events} == {"r1"}
    assert events[3].data["text"] == "echo: hello"


async def test_second_turn_is_hot_and_seq_continues(make_settings: Settings) -> None:
    provider = FakeProvider()
    async with Engine(make_settings(), provider) as engine:
        first = await (await engine.execute("k", "one")).collect(5)
        second = await (await engine.execute("k", "two")).collect(5)
        info = engine.sessions()[0]
    assert len(provider.processes) == 1 and provider.processes[0].prompts == ["one", "two"]
    assert "session" not in types(second)
    assert second[0].seq == first[-1].seq + 1
    assert info.turns == 2 and info.state == "idle" and info.output_tokens == 4


async def test_emit_gets_every_event_and_audit(make_settings: Settings) -> None:
    seen: list[AgentEvent | AuditEvent] = []

    async def emit(item: AgentEvent | AuditEvent) -> None:
        seen.append(item)

    async with Engine(make_settings(), FakeProvider(), emit=emit) as engine:
        events = await (await engine.execute("k", "x", user="alice")).collect(5)
    audits = [e for e in seen if isinstance(e, AuditEvent)]
    assert [a.type for a in audits] == ["session.created"] and audits[0].actor == "alice"
    assert [e for e in seen if isinstance(e, AgentEvent)][: len(events)] == events


async def test_busy_policy_queue_runs_turns_in_order(make_settings: Settings) -> None:
    provider = FakeProvider(delay=0.01)
    async with Engine(make_settings(busy_policy="queue"), provider) as engine:
        turns = [await engine.execute("k", f"m{i}") for i in range(3)]
        results = [await t.collect(5) for t in turns]
    assert provider.processes[0].prompts == ["m0", "m1", "m2"]
    assert all(r[-1].data["status"] == "ok" for r in results)
    assert results[1][0].seq > results[0][-1].seq


async def test_busy_policy_reject(make_settings: Settings) -> None:
    provider = FakeProvider([[agent_event("status", text="hang")]])
    async with Engine(make_settings(busy_policy="reject"), provider) as engine:
        first = await engine.execute("k", "long")
        await next_event(first, "session", 5.0)
        with pytest.raises(SessionBusyError):
            await engine.execute("k", "second")
        assert await engine.interrupt(engine.session_id("k"))
        assert (await first.collect(5))[-1].data["status"] == "interrupted"


async def test_busy_policy_interrupt(make_settings: Settings) -> None:
    provider = FakeProvider([[agent_event("status", text="hang")]])
    async with Engine(make_settings(busy_policy="interrupt"), provider) as engine:
        first = await engine.execute("k", "long")
        await next_event(first, "session", 5.0)
        second = await engine.execute("k", "now this")
        assert (await first.collect(5))[-1].data["status"] == "interrupted"
        assert (await second.collect(5))[-1].data["status"] == "ok"


async def test_max_sessions_evicts_lru_idle(make_settings: Settings) -> None:
    audits: list[str] = []

    async def emit(item: AgentEvent | AuditEvent) -> None:
        if isinstance(item, AuditEvent):
            audits.append(item.type)

    provider = FakeProvider()
    async with Engine(make_settings(max_sessions=2), provider, emit=emit) as engine:
        for key in ("a", "b", "c"):
            await (await engine.execute(key, "hi")).collect(5)
        assert engine.live_processes == 2
        states = {s.key: s.state for s in engine.sessions()}
        assert states == {"a": "stopped", "b": "idle", "c": "idle"}
        # the evicted session comes back (a new process) on its next message
        await (await engine.execute("a", "again")).collect(5)
        assert {s.key: s.state for s in engine.sessions()}["b"] == "stopped"
    assert audits.count("session.evicted") == 2


async def test_pool_exhausted_when_all_busy(make_settings: Settings) -> None:
    provider = FakeProvider([[agent_event("status", text="hang")]])
    async with Engine(make_settings(max_sessions=1), provider) as engine:
        busy = await engine.execute("a", "long")
        await next_event(busy, "session", 5.0)
        events = await (await engine.execute("b", "hi")).collect(5)
        assert events[-2].data["code"] == "pool_exhausted"
        assert "All 1 agent sessions are busy" in events[-2].data["message"]
        assert events[-1].data["status"] == "error"
        await engine.interrupt(engine.session_id("a"))


async def test_idle_timeout_stops_the_process(make_settings: Settings) -> None:
    provider = FakeProvider()
    async with Engine(make_settings(idle_timeout=0.2), provider) as engine:
        await (await engine.execute("k", "hi")).collect(5)
        await wait_for(lambda: provider.closed == [engine.session_id("k")])
        assert engine.live_processes == 0
        events = await (await engine.execute("k", "back")).collect(5)
    assert events[0].data == {"state": "resumed"}


async def test_turn_idle_timeout_interrupts(make_settings: Settings) -> None:
    provider = FakeProvider([[agent_event("status", text="hang")]])
    async with Engine(make_settings(turn_idle_timeout=0.3), provider) as engine:
        events = await (await engine.execute("k", "hang")).collect(5)
    assert events[-2].data["code"] == "turn_timeout"
    assert (
        "no output for 0s" in events[-2].data["message"]
        or "no output" in events[-2].data["message"]
    )
    assert events[-1].data["status"] == "error"


async def test_turn_max_duration(make_settings: Settings) -> None:
    provider = FakeProvider([[agent_event("text_delta", text="x")] * 200], delay=0.02)
    async with Engine(make_settings(turn_max_duration=0.3), provider) as engine:
        events = await (await engine.execute("k", "long")).collect(10)
    assert events[-2].data["code"] == "turn_timeout" and "longer than" in events[-2].data["message"]


async def test_permission_allow_and_deny(make_settings: Settings) -> None:
    provider = FakeProvider(
        [
            [ToolCall("Bash", {"command": "make"}, output="built")],
            [ToolCall("Bash", {"command": "rm x"})],
        ]
    )
    async with Engine(make_settings(), provider) as engine:
        turn = await engine.execute("k", "build", user="alice")
        request = await next_event(turn, "permission_request", 5.0)
        assert request.data["tool"] == "Bash" and request.data["scopes"] == ["once", "session"]
        pid = request.data["permission_id"]
        with pytest.raises(NotAuthorizedError):
            await engine.approvals.decide(pid, "allow", by="mallory")
        await engine.approvals.decide(pid, "allow", by="alice")
        with pytest.raises(AlreadyDecidedError):
            await engine.approvals.decide(pid, "deny", by="alice")
        rest = await turn.collect(5)
        decision = next(e for e in rest if e.type == "permission_decision")
        assert decision.data == {
            "permission_id": pid,
            "decision": "allow",
            "scope": "once",
            "by": "alice",
        }
        result = next(e for e in rest if e.type == "tool_result")
        assert result.data["output"] == "built" and not result.data["is_error"]

        turn = await engine.execute("k", "clean", user="alice")
        request = await next_event(turn, "permission_request", 5.0)
        await engine.approvals.decide(
            request.data["permission_id"], "deny", by=ADMIN, reason="not today"
        )
        result = await next_event(turn, "tool_result", 5.0)
        assert result.data["is_error"] and result.data["output"] == "not today"


async def test_approval_timeout_denies(make_settings: Settings) -> None:
    provider = FakeProvider([[ToolCall("Bash", {"command": "make"})]])
    settings = make_settings(extra={"security": {"approval_timeout": 0.2}})
    async with Engine(settings, provider) as engine:
        events = await (await engine.execute("k", "x")).collect(5)
    decision = next(e for e in events if e.type == "permission_decision")
    assert decision.data["decision"] == "deny" and decision.data["by"] == "timeout"
    assert next(e for e in events if e.type == "tool_result").data["is_error"]


async def test_idle_timer_paused_while_permission_pending(make_settings: Settings) -> None:
    provider = FakeProvider([[ToolCall("Bash", {"command": "make"})]])
    async with Engine(make_settings(turn_idle_timeout=0.2), provider) as engine:
        turn = await engine.execute("k", "x")
        request = await next_event(turn, "permission_request", 5.0)
        await asyncio.sleep(0.6)  # three idle timeouts pass while a person thinks
        await engine.approvals.decide(request.data["permission_id"], "allow", by=ADMIN)
        events = await turn.collect(5)
    assert events[-1].data["status"] == "ok"


async def test_session_scope_grant_covers_later_calls(make_settings: Settings) -> None:
    provider = FakeProvider(
        [
            [ToolCall("Bash", {"command": "npm test"})],
            [ToolCall("Bash", {"command": "npm test"})],
            [ToolCall("Bash", {"command": "npm publish"})],
        ]
    )
    async with Engine(make_settings(), provider) as engine:
        turn = await engine.execute("k", "a")
        request = await next_event(turn, "permission_request", 5.0)
        await engine.approvals.decide(
            request.data["permission_id"], "allow", by=ADMIN, scope="session"
        )
        await turn.collect(5)
        second = await (await engine.execute("k", "b")).collect(5)
        assert "permission_request" not in types(second)
        third = await engine.execute("k", "c")
        await next_event(third, "permission_request", 5.0)  # a different command asks again
        await engine.interrupt(engine.session_id("k"))


async def test_unattended_policies(make_settings: Settings) -> None:
    provider = FakeProvider(
        [
            [ToolCall("Bash", {"command": "x"})],
            [ToolCall("Read", {"file_path": "a"}), ToolCall("Bash", {"command": "y"})],
        ]
    )
    async with Engine(make_settings(), provider) as engine:
        denied = await (await engine.execute("cron", "x", policy="deny")).collect(5)
        assert "permission_request" not in types(denied)
        assert next(e for e in denied if e.type == "tool_result").data["is_error"]
        from hotplex.config import AllowTools

        mixed = await (
            await engine.execute("cron", "y", policy=AllowTools(allow_tools=("Read",)))
        ).collect(5)
        results = [e.data["is_error"] for e in mixed if e.type == "tool_result"]
        assert results == [False, True]


async def test_reset_mints_a_new_provider_session(make_settings: Settings) -> None:
    provider = FakeProvider()
    async with Engine(make_settings(), provider) as engine:
        await (await engine.execute("k", "a")).collect(5)
        session = engine.get(engine.session_id("k"))
        assert session is not None
        old = session.provider_session_id
        await engine.reset(session.session_id)
        assert session.provider_session_id != old
        events = await (await engine.execute("k", "b")).collect(5)
    assert events[0].data == {"state": "started"}
    assert provider.processes[1].spec.provider_session_id == session.provider_session_id


async def test_prewarm_spare_is_taken_by_a_new_conversation(make_settings: Settings) -> None:
    provider = FakeProvider()
    async with Engine(make_settings(prewarm=1), provider) as engine:
        await wait_for(lambda: engine.spares.ready == 1)
        spare = provider.processes[0]
        events = await (await engine.execute("new", "hi")).collect(5)
        session = engine.get(engine.session_id("new"))
        assert session is not None
        assert spare.prompts == ["hi"] and events[0].data == {"state": "started"}
        assert session.provider_session_id == spare.spec.provider_session_id
        assert session.work_dir == spare.spec.work_dir
        await wait_for(lambda: engine.spares.ready == 1)  # refilled
        assert engine.live_processes == 2
    assert engine.live_processes == 0


async def test_a_session_with_files_in_its_directory_keeps_it(make_settings: Settings) -> None:
    provider = FakeProvider()
    async with Engine(make_settings(prewarm=1), provider) as engine:
        await wait_for(lambda: engine.spares.ready == 1)
        work = await engine.work_dir("new", address="fake:w/D-U1")
        (work / "attachments").mkdir(parents=True)
        (work / "attachments" / "a.txt").write_text("for the agent")
        await (await engine.execute("new", "hi", address="fake:w/D-U1")).collect(5)
        session = engine.get(engine.session_id("new"))
        assert session is not None and session.work_dir == work
        assert provider.processes[-1].spec.work_dir == work  # a cold start, not the spare
        assert provider.processes[0].prompts == []


async def test_subscribers_get_live_events_and_slow_ones_are_dropped(
    make_settings: Settings,
) -> None:
    async with Engine(make_settings(), FakeProvider()) as engine:
        await (await engine.execute("k", "warm")).collect(5)
        sid = engine.session_id("k")
        fast = engine.subscribe(sid)
        slow = engine.subscribe(sid, maxsize=2)
        assert fast is not None and slow is not None
        await (await engine.execute("k", "go")).collect(5)
        assert slow.overflowed
        got = []
        async with asyncio.timeout(5):
            async for event in fast:
                got.append(event.type)
                if event.type == "done":
                    break
        assert got == ["text_delta", "text_delta", "text", "usage", "done"]


async def test_projects_map_conversations_to_directories_and_worktrees(
    make_settings: Settings, tmp_path: Any
) -> None:
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git[:3], "init", "-q"], check=True, timeout=30)
    (repo / "README").write_text("x")
    subprocess.run([*git, "add", "README"], check=True, timeout=30)
    subprocess.run([*git, "commit", "-qm", "init"], check=True, timeout=30)
    plain = tmp_path / "plain"
    plain.mkdir()
    settings = make_settings(
        extra={
            "projects": [
                {"match": "slack:T1/C1/*", "dir": str(repo), "worktree": True},
                {"match": "slack:T1/*", "dir": str(plain)},
            ]
        }
    )
    provider = FakeProvider()
    async with Engine(settings, provider) as engine:
        for key in ("slack:T1/C1/171.1", "slack:T1/C2", "web:x/y"):
            await (await engine.execute(key, "hi", address=key)).collect(5)
        dirs = {s.key: s.work_dir for s in engine.sessions()}
    worktree = dirs["slack:T1/C1/171.1"]
    assert worktree.startswith(str(settings.engine.data_dir / "worktrees"))
    assert (Path(worktree) / "README").read_text() == "x"  # a checkout of the repo
    assert dirs["slack:T1/C2"] == str(plain)
    assert dirs["web:x/y"] == str(settings.engine.resolved_work_dir / engine.session_id("web:x/y"))


async def test_missing_project_directory_is_a_clear_error(
    make_settings: Settings, tmp_path: Any
) -> None:
    settings = make_settings(extra={"projects": [{"match": "*", "dir": str(tmp_path / "no")}]})
    async with Engine(settings, FakeProvider()) as engine:
        with pytest.raises(Exception, match="does not exist"):
            await engine.execute("k", "hi", address="web:a/b")
