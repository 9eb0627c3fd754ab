"""The engine driving the real pinned Claude Code CLI against the fake Anthropic API."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from hotplex.engine.engine import Engine
from hotplex.engine.policy import PolicyVerdict, ToolCall
from hotplex.providers.claude_code import ClaudeCodeProvider, transcript_path
from hotplex.testing.fake_anthropic import FakeAnthropic
from hotplex.testing.turns import next_event, texts

pytestmark = pytest.mark.real_cli
TURN = 60.0


def engine_for(settings: Any, **kwargs: Any) -> Engine:
    return Engine(settings, ClaudeCodeProvider(settings.provider), **kwargs)


async def test_hot_turns_keep_context(
    fake_api: FakeAnthropic, claude_settings: Callable[..., Any]
) -> None:
    async with engine_for(claude_settings()) as engine:
        first = await (await engine.execute("k", "hello there")).collect(TURN)
        second = await (await engine.execute("k", "my word is PLUM")).collect(TURN)
        third = await (await engine.execute("k", "RECALL")).collect(TURN)
        info = engine.sessions()[0]
    assert texts(first) == "echo: hello there"
    assert any(e.type == "text_delta" for e in first)
    assert [e.data["status"] for e in (first[-1], second[-1], third[-1])] == ["ok"] * 3
    assert "hello there" in texts(third) and "my word is PLUM" in texts(third)
    usage = next(e for e in third if e.type == "usage")
    assert usage.data["cost_usd"] > 0 and usage.data["context_window"] > 0
    assert info.turns == 3 and info.pid is not None


async def test_tool_call_allowed_and_denied(
    fake_api: FakeAnthropic, claude_settings: Callable[..., Any]
) -> None:
    settings = claude_settings()
    async with engine_for(settings) as engine:
        turn = await engine.execute("k", "BASH: touch allowed.txt", user="alice")
        request = await next_event(turn, "permission_request", TURN)
        assert request.data["tool"] == "Bash"
        await engine.approvals.decide(request.data["permission_id"], "allow", by="alice")
        allowed = await turn.collect(TURN)
        turn = await engine.execute("k", "BASH: touch denied.txt", user="alice")
        request = await next_event(turn, "permission_request", TURN)
        await engine.approvals.decide(
            request.data["permission_id"], "deny", by="alice", reason="no thanks"
        )
        denied = await turn.collect(TURN)
        work_dir = engine.sessions()[0].work_dir
    assert os.path.exists(os.path.join(work_dir, "allowed.txt"))
    assert not os.path.exists(os.path.join(work_dir, "denied.txt"))
    assert "tool said:" in texts(allowed)
    result = next(e for e in denied if e.type == "tool_result")
    assert result.data["is_error"] and "no thanks" in result.data["output"]
    assert denied[-1].data["status"] == "ok"


class DenyReads:
    name = "deny-reads"

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def check(self, call: ToolCall) -> PolicyVerdict | None:
        self.seen.append((call.request.stage, call.request.tool))
        if call.request.tool == "Read":
            return PolicyVerdict("deny", "reading is not allowed here", rule="test.no-read")
        return None


async def test_read_only_tool_is_stopped_by_the_pre_tool_hook(
    fake_api: FakeAnthropic, claude_settings: Callable[..., Any], tmp_path: Any
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    policy = DenyReads()
    async with engine_for(claude_settings(), policies=[policy]) as engine:
        events = await (await engine.execute("k", f"READ: {secret}")).collect(TURN)
    assert ("pre", "Read") in policy.seen
    assert "permission_request" not in [e.type for e in events]
    result = next(e for e in events if e.type == "tool_result")
    assert result.data["is_error"] and "test.no-read" in result.data["output"]
    assert "TOP SECRET" not in result.data["output"]


async def test_interrupt_mid_stream(
    fake_api: FakeAnthropic, claude_settings: Callable[..., Any]
) -> None:
    async with engine_for(claude_settings()) as engine:
        turn = await engine.execute("k", "SLOW=5 tell me a long story")
        await next_event(turn, "text_delta", TURN)
        start = time.monotonic()
        assert await engine.interrupt(engine.session_id("k"))
        rest = await turn.collect(TURN)
        elapsed = time.monotonic() - start
        after = await (await engine.execute("k", "still there?")).collect(TURN)
    assert rest[-1].data["status"] == "interrupted" and elapsed < 3
    assert after[-1].data["status"] == "ok" and "echo: still there?" in texts(after)


async def test_resume_after_the_process_is_killed(
    fake_api: FakeAnthropic, claude_settings: Callable[..., Any]
) -> None:
    async with engine_for(claude_settings()) as engine:
        await (await engine.execute("k", "remember MANGO")).collect(TURN)
        session = engine.get(engine.session_id("k"))
        assert session is not None and session.process is not None
        path = transcript_path(
            engine.workdirs.state_dir(session.provider_session_id),
            session.work_dir,
            session.provider_session_id,
        )
        # the CLI writes its transcript shortly after the result line; a kill before that
        # loses the turn in the CLI's own history (it is still in HotPlex's storage)
        async with asyncio.timeout(10):
            while not (path.exists() and "msg_fake" in path.read_text()):
                await asyncio.sleep(0.02)
        pid = session.process.pid
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        events = await (await engine.execute("k", "RECALL")).collect(TURN)
    assert events[0].data == {"state": "resumed"}
    assert "remember MANGO" in texts(events)


async def test_prewarm_makes_the_first_turn_hot(
    fake_api: FakeAnthropic, claude_settings: Callable[..., Any]
) -> None:
    async with engine_for(claude_settings(prewarm=1)) as engine:
        async with asyncio.timeout(TURN):
            while engine.spares.ready < 1:
                await asyncio.sleep(0.02)
        start = time.monotonic()
        events = await (await engine.execute("new", "hi")).collect(TURN)
        first_turn = time.monotonic() - start
        session = engine.get(engine.session_id("new"))
        assert session is not None
    assert events[-1].data["status"] == "ok" and texts(events) == "echo: hi"
    assert session.work_dir.name == session.provider_session_id
    # cold start is ~0.4-1 s; a prewarmed first turn must not pay it (loose bound)
    assert first_turn < 0.35, first_turn
    assert fake_api.count_user_turns() == 1
