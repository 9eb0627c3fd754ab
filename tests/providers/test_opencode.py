"""The OpenCode provider driving the real pinned ``opencode serve`` against the fake Anthropic
API, on its own and through the engine. One server (about 3 s to start) serves the module."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from hotplex.config import Settings, load_settings
from hotplex.engine.engine import Engine
from hotplex.engine.policy import PolicyVerdict, ToolCall
from hotplex.events import AgentEvent
from hotplex.interfaces import Provider, ToolGate
from hotplex.providers.opencode import SESSION_MAP, OpenCodeProvider, OpenCodeSession
from hotplex.testing.fake_anthropic import FakeAnthropic
from hotplex.testing.real_cli import require_cli
from hotplex.testing.turns import next_event, texts
from hotplex.types import AgentStartSpec, ToolDecision, ToolRequest

pytestmark = [pytest.mark.real_cli, pytest.mark.asyncio(loop_scope="module")]
TURN = 60.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake_api() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as api:
        yield api


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def provider(
    tmp_path_factory: pytest.TempPathFactory, fake_api: FakeAnthropic
) -> AsyncIterator[OpenCodeProvider]:
    binary = require_cli("opencode")
    settings = load_settings(
        None, text=yaml.safe_dump({"provider": {"type": "opencode"}}), environ={}
    ).settings
    oc = OpenCodeProvider(
        settings.provider,
        binary=binary,
        data_dir=tmp_path_factory.mktemp("opencode-data"),
        health_interval=1.0,
    )
    try:
        yield oc
    finally:
        await oc.aclose()


class Shared(Provider):
    """Lends the module's provider to an engine without letting the engine close it."""

    name = "opencode"

    def __init__(self, inner: OpenCodeProvider) -> None:
        self.inner = inner

    async def start(self, spec: AgentStartSpec, gate: ToolGate) -> OpenCodeSession:
        return await self.inner.start(spec, gate)


@pytest.fixture
def settings(tmp_path: Path, fake_api: FakeAnthropic) -> Settings:
    raw = {
        "engine": {"data_dir": str(tmp_path / "data")},
        "provider": {
            "type": "opencode",
            "env": {"ANTHROPIC_BASE_URL": fake_api.base_url, "ANTHROPIC_API_KEY": "sk-test"},
        },
    }
    return load_settings(None, text=yaml.safe_dump(raw), environ={}).settings


@pytest.fixture
def engine_for(settings: Settings, provider: OpenCodeProvider) -> Callable[..., Engine]:
    def make(**kwargs: Any) -> Engine:
        return Engine(settings, Shared(provider), **kwargs)

    return make


def spec_for(tmp_path: Path, fake_api: FakeAnthropic, name: str, resume: bool = False) -> Any:
    return AgentStartSpec(
        session_id=name,
        provider_session_id=f"p-{name}",
        resume=resume,
        work_dir=tmp_path / "work" / name,
        state_dir=tmp_path / "state" / name,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "ANTHROPIC_BASE_URL": fake_api.base_url,
            "ANTHROPIC_API_KEY": "sk-test",
        },
    )


async def allow_all(request: ToolRequest) -> ToolDecision:
    return ToolDecision("allow")


async def run(session: OpenCodeSession, prompt: str) -> list[AgentEvent]:
    async with asyncio.timeout(TURN):
        return [event async for event in session.turn(prompt)]


async def test_hot_turns_keep_context(engine_for: Callable[..., Engine]) -> None:
    async with engine_for() as engine:
        first = await (await engine.execute("k", "hello there")).collect(TURN)
        start = time.monotonic()
        second = await (await engine.execute("k", "my word is PLUM")).collect(TURN)
        hot = time.monotonic() - start
        third = await (await engine.execute("k", "RECALL")).collect(TURN)
        info = engine.sessions()[0]
    assert first[0].data == {"state": "started"}
    assert texts(first) == "echo: hello there"
    assert "".join(e.data["text"] for e in first if e.type == "text_delta") == "echo: hello there"
    assert [e.data["status"] for e in (first[-1], second[-1], third[-1])] == ["ok"] * 3
    assert "hello there" in texts(third) and "my word is PLUM" in texts(third)
    usage = next(e for e in third if e.type == "usage")
    assert usage.data["cost_usd"] > 0 and usage.data["context_window"] > 0
    assert usage.data["input_tokens"] > 0 and usage.data["output_tokens"] > 0
    assert info.turns == 3 and info.pid is not None
    assert hot < 5, hot


async def test_permission_allowed_and_denied(engine_for: Callable[..., Engine]) -> None:
    async with engine_for() as engine:
        turn = await engine.execute("k", "BASH: touch allowed.txt", user="alice")
        allowed: list[AgentEvent] = []
        request = await next_event(turn, "permission_request", TURN, seen=allowed)
        assert request.data["tool"] == "bash"
        assert request.data["input"]["command"] == "touch allowed.txt"
        await engine.approvals.decide(request.data["permission_id"], "allow", by="alice")
        allowed += await turn.collect(TURN)
        turn = await engine.execute("k", "BASH: touch denied.txt", user="alice")
        request = await next_event(turn, "permission_request", TURN)
        await engine.approvals.decide(
            request.data["permission_id"], "deny", by="alice", reason="no thanks"
        )
        denied = await turn.collect(TURN)
        work_dir = Path(engine.sessions()[0].work_dir)
    assert (work_dir / "allowed.txt").exists()
    assert not (work_dir / "denied.txt").exists()
    kinds = [e.type for e in allowed]
    assert kinds.index("tool_use") < kinds.index("permission_request") < kinds.index("tool_result")
    used = next(e for e in allowed if e.type == "tool_use")
    assert used.data["name"] == "bash"
    assert "tool said:" in texts(allowed) and allowed[-1].data["status"] == "ok"
    result = next(e for e in denied if e.type == "tool_result")
    assert result.data["is_error"] and "no thanks" in result.data["output"]
    assert denied[-1].data["status"] == "ok"


class DenyReads:
    name = "deny-reads"

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def check(self, call: ToolCall) -> PolicyVerdict | None:
        self.seen.append((call.request.stage, call.request.tool))
        if call.request.tool == "read":
            return PolicyVerdict("deny", "reading is not allowed here", rule="test.no-read")
        return None


async def test_read_only_tools_reach_the_pre_stage(
    engine_for: Callable[..., Engine], tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    policy = DenyReads()
    async with engine_for(policies=[policy]) as engine:
        events = await (await engine.execute("k", f"READ: {secret}")).collect(TURN)
    assert ("pre", "read") in policy.seen
    assert "permission_request" not in [e.type for e in events]
    result = next(e for e in events if e.type == "tool_result")
    assert result.data["is_error"] and "test.no-read" in result.data["output"]
    assert "TOP SECRET" not in result.data["output"]
    assert events[-1].data["status"] == "ok"


async def test_a_subagents_bash_reaches_the_gate(
    provider: OpenCodeProvider, fake_api: FakeAnthropic, tmp_path: Path
) -> None:
    seen: list[ToolRequest] = []

    async def gate(request: ToolRequest) -> ToolDecision:
        seen.append(request)
        return ToolDecision("defer" if request.stage == "pre" else "allow")

    spec = spec_for(tmp_path, fake_api, "sub")
    session = await provider.start(spec, gate)
    try:
        # \u0042ASH keeps the keyword out of the parent's own text; the subagent gets BASH:
        task = r'{"description": "sub job", "prompt": "\u0042ASH: touch sub.txt", '
        task += r'"subagent_type": "general"}'
        events = await run(session, "MCP: task " + task)
    finally:
        await session.close()
    assert [(r.stage, r.tool) for r in seen if r.tool == "bash"] == [
        ("pre", "bash"),
        ("permission", "bash"),
    ]
    assert (spec.work_dir / "sub.txt").exists()
    assert events[-1].data["status"] == "ok"


async def test_interrupt_mid_stream(engine_for: Callable[..., Engine]) -> None:
    async with engine_for() as engine:
        turn = await engine.execute("k", "SLOW=5 tell me a long story")
        await next_event(turn, "text_delta", TURN)
        start = time.monotonic()
        assert await engine.interrupt(engine.session_id("k"))
        rest = await turn.collect(TURN)
        elapsed = time.monotonic() - start
        after = await (await engine.execute("k", "still there?")).collect(TURN)
    assert rest[-1].data["status"] == "interrupted" and elapsed < 3, elapsed
    assert "error" not in [e.type for e in rest]
    assert after[-1].data["status"] == "ok" and "echo: still there?" in texts(after)


async def test_interrupt_while_a_permission_is_pending(
    engine_for: Callable[..., Engine],
) -> None:
    async with engine_for() as engine:
        turn = await engine.execute("k", "BASH: touch never.txt", user="alice")
        await next_event(turn, "permission_request", TURN)
        start = time.monotonic()
        assert await engine.interrupt(engine.session_id("k"))
        rest = await turn.collect(TURN)
        elapsed = time.monotonic() - start
        after = await (await engine.execute("k", "still there?")).collect(TURN)
        work_dir = Path(engine.sessions()[0].work_dir)
    decision = next(e for e in rest if e.type == "permission_decision")
    assert decision.data["decision"] == "deny"
    assert rest[-1].data["status"] == "interrupted" and elapsed < 3, elapsed
    assert not (work_dir / "never.txt").exists()
    # the next request carries the stopped tool's result, which the fake answers
    assert after[-1].data["status"] == "ok" and "tool error:" in texts(after)


async def test_resume_finds_the_same_opencode_session(
    provider: OpenCodeProvider, fake_api: FakeAnthropic, tmp_path: Path
) -> None:
    spec = spec_for(tmp_path, fake_api, "resume")
    first = await provider.start(spec, allow_all)
    try:
        remembered = await run(first, "THINK remember KIWI")
    finally:
        await first.close()
    kinds = [e.type for e in remembered]
    assert kinds.index("thinking") < kinds.index("text") and kinds[-1] == "done"
    mapped = json.loads((spec.state_dir / SESSION_MAP).read_text())
    assert mapped[spec.provider_session_id]["id"] == first.opencode_session_id
    again = await provider.start(spec_for(tmp_path, fake_api, "resume", resume=True), allow_all)
    try:
        events = await run(again, "RECALL")
    finally:
        await again.close()
    assert again.opencode_session_id == first.opencode_session_id
    assert "THINK remember KIWI" in texts(events)


async def test_sessions_share_one_stream_without_crosstalk(
    provider: OpenCodeProvider, fake_api: FakeAnthropic, tmp_path: Path
) -> None:
    sessions = [
        await provider.start(spec_for(tmp_path, fake_api, f"c{i}"), allow_all) for i in range(2)
    ]
    try:
        results = await asyncio.gather(
            *(run(s, f"SLOW=1 I am {i}") for i, s in enumerate(sessions))
        )
    finally:
        for session in sessions:
            await session.close()
    for i, events in enumerate(results):
        assert texts(events).startswith(f"echo: SLOW=1 I am {i}"), texts(events)
        assert events[-1].data["status"] == "ok"


@pytest.mark.timeout(180)
async def test_server_killed_mid_turn_is_restarted_with_sessions_intact(
    engine_for: Callable[..., Engine], provider: OpenCodeProvider
) -> None:
    async with engine_for() as engine:
        await (await engine.execute("k", "remember MANGO")).collect(TURN)
        session = engine.get(engine.session_id("k"))
        assert session is not None and isinstance(session.process, OpenCodeSession)
        opencode_id = session.process.opencode_session_id
        starts, pid = provider.starts, provider.server_pid
        assert pid is not None
        turn = await engine.execute("k", "SLOW=5 a long story")
        await next_event(turn, "text_delta", TURN)
        os.killpg(pid, signal.SIGKILL)
        broken = await turn.collect(TURN)
        events = await (await engine.execute("k", "RECALL")).collect(TURN)
        process = session.process
    error = next(e for e in broken if e.type == "error")
    assert error.data["retryable"] and broken[-1].data["status"] == "error"
    assert provider.starts == starts + 1 and provider.server_pid != pid
    assert isinstance(process, OpenCodeSession) and process.opencode_session_id == opencode_id
    assert "remember MANGO" in texts(events) and events[-1].data["status"] == "ok"


async def test_api_errors_are_retried_until_the_deadline(
    provider: OpenCodeProvider, fake_api: FakeAnthropic, tmp_path: Path
) -> None:
    session = await provider.start(spec_for(tmp_path, fake_api, "err"), allow_all)
    provider.retry_deadline = 3.0
    try:
        start = time.monotonic()
        events = await run(session, "ERR500")
        elapsed = time.monotonic() - start
        after = await run(session, "fine again?")
        bad = await run(session, "ERR400")
    finally:
        provider.retry_deadline = 120.0
        await session.close()
    statuses = [e.data["text"] for e in events if e.type == "status"]
    assert statuses and statuses[0].startswith("retrying after API error (attempt 1)")
    error = next(e for e in events if e.type == "error")
    assert error.data["code"] == "api_error" and error.data["retryable"]
    assert "gave up after" in error.data["message"]
    assert events[-1].data["status"] == "error" and 3 <= elapsed < 10, elapsed
    assert after[-1].data["status"] == "ok" and "echo: fine again?" in texts(after)
    error = next(e for e in bad if e.type == "error")
    assert error.data["code"] == "api_error" and not error.data["retryable"]
    assert "fake bad request" in error.data["message"] and bad[-1].data["status"] == "error"


async def test_closing_a_session_leaves_the_server_running(
    provider: OpenCodeProvider, fake_api: FakeAnthropic, tmp_path: Path
) -> None:
    session = await provider.start(spec_for(tmp_path, fake_api, "close"), allow_all)
    pid = provider.server_pid
    await session.close()
    await session.close()
    assert not session.alive and provider.server_alive and provider.server_pid == pid
    assert session not in provider.sessions
    events = await run(session, "hello")
    assert [e.type for e in events] == ["error", "done"]
    assert events[0].data["retryable"] and events[-1].data["status"] == "error"


async def test_a_dropped_event_stream_reconnects_mid_turn(
    provider: OpenCodeProvider, fake_api: FakeAnthropic, tmp_path: Path
) -> None:
    session = await provider.start(spec_for(tmp_path, fake_api, "drop"), allow_all)
    events: list[AgentEvent] = []
    try:
        async with asyncio.timeout(TURN):
            async for event in session.turn("SLOW=2 keep talking"):
                events.append(event)
                if event.type == "text_delta" and len(events) == 1:
                    stream = provider._stream
                    assert stream is not None
                    stream.close()
    finally:
        await session.close()
    assert events[-1].data["status"] == "ok"
    assert texts(events).startswith("echo: SLOW=2 keep talking")


async def test_lost_idle_events_are_caught_up_by_polling(
    provider: OpenCodeProvider,
    fake_api: FakeAnthropic,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = provider._on_frame

    def lossy(frame: bytes) -> None:
        idle = b'"session.idle"' in frame or b'"type":"idle"' in frame
        text = b'"message.part.updated"' in frame and b'"type":"text"' in frame
        if not (idle or text):
            original(frame)

    session = await provider.start(spec_for(tmp_path, fake_api, "lossy"), allow_all)
    monkeypatch.setattr(provider, "_on_frame", lossy)
    monkeypatch.setattr(provider, "poll_interval", 0.5)
    try:
        events = await run(session, "hello lossy")
    finally:
        monkeypatch.undo()
        await session.close()
    assert texts(events) == "echo: hello lossy"
    assert [e.type for e in events][-2:] == ["usage", "done"]
    assert events[-1].data["status"] == "ok"


@pytest.mark.timeout(180)
async def test_a_hung_server_is_restarted_after_failed_health_checks(
    provider: OpenCodeProvider, fake_api: FakeAnthropic, tmp_path: Path
) -> None:
    session = await provider.start(spec_for(tmp_path, fake_api, "hung"), allow_all)
    assert (await run(session, "remember PEAR"))[-1].data["status"] == "ok"
    starts, pid = provider.starts, provider.server_pid
    assert pid is not None
    provider.health_timeout = provider.health_interval = 0.5
    try:
        os.killpg(pid, signal.SIGSTOP)
        async with asyncio.timeout(90):  # 3 failed checks, then a start (3-30 s under load)
            await provider.wait_started(starts + 1)
    finally:
        # back to the module's values before the next turn: a fresh server busy with its
        # first turn can miss 0.5 s health checks under load, and a second restart would
        # end that turn with server_crashed
        provider.health_timeout, provider.health_interval = 5.0, 1.0
    try:
        events = await run(session, "RECALL")
    finally:
        await session.close()
    assert provider.server_pid != pid
    assert "remember PEAR" in texts(events) and events[-1].data["status"] == "ok"
