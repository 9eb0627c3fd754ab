"""Acceptance: the real pinned ``opencode serve`` calls a plugin's agent tool on the hotplex
MCP server (one process per work directory, shared by its sessions), through the engine's
approvals, against the fake Anthropic API; the bridge finds each call's session by the grant
its approval left."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_asyncio
import yaml

from hotplex.agent_tools import AgentToolBridge
from hotplex.config import AllowTools, Settings, load_settings
from hotplex.context import PluginContext
from hotplex.engine.engine import Engine
from hotplex.engine.policy import PolicyVerdict, ToolCall
from hotplex.events import AgentEvent
from hotplex.interfaces import Provider, ToolGate
from hotplex.providers.opencode import OpenCodeProvider, OpenCodeSession
from hotplex.testing.fake_anthropic import FakeAnthropic
from hotplex.testing.fakes import EchoTool
from hotplex.testing.real_cli import require_cli
from hotplex.testing.turns import next_event, texts
from hotplex.types import AgentStartSpec, ToolDecision, ToolRequest

pytestmark = [pytest.mark.real_cli, pytest.mark.asyncio(loop_scope="module")]
TURN = 60.0
TOOL = "hotplex_echo"
PROMPT = f'MCP: {TOOL} {{"text": "hi"}}'


class World:
    """One bridge and one OpenCode server (started with the bridge's MCP server) for the
    module; ``engine`` is the engine of the running test, for the bridge's resolver."""

    def __init__(
        self, data_dir: Path, api: FakeAnthropic, provider: OpenCodeProvider, echo: EchoTool
    ) -> None:
        self.data_dir = data_dir
        self.api = api
        self.provider = provider
        self.echo = echo
        self.engine: Engine | None = None

    def resolve(self, session_id: str) -> tuple[str, str | None] | None:
        session = self.engine.get(session_id) if self.engine is not None else None
        return (session.session_id, session.address) if session is not None else None

    def settings(self, **provider: Any) -> Settings:
        raw = {
            "engine": {"data_dir": str(self.data_dir)},
            "provider": {
                "type": "opencode",
                "env": {"ANTHROPIC_BASE_URL": self.api.base_url, "ANTHROPIC_API_KEY": "sk-test"},
                **provider,
            },
        }
        return load_settings(None, text=yaml.safe_dump(raw), environ={}).settings


class Shared(Provider):
    """Lends the module's provider to an engine without letting the engine close it."""

    name = "opencode"

    def __init__(self, inner: OpenCodeProvider) -> None:
        self.inner = inner

    async def start(self, spec: AgentStartSpec, gate: ToolGate) -> OpenCodeSession:
        return await self.inner.start(spec, gate)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    binary = require_cli("opencode")
    data_dir = tmp_path_factory.mktemp("oc-tools")
    async with FakeAnthropic() as api:
        settings = load_settings(
            None, text=yaml.safe_dump({"provider": {"type": "opencode"}}), environ={}
        ).settings
        echo = EchoTool()
        box: World | None = None

        def resolve(session_id: str) -> tuple[str, str | None] | None:
            return box.resolve(session_id) if box is not None else None

        context = cast(PluginContext, object())
        bridge = AgentToolBridge({"echo": echo.spec()}, context, data_dir=data_dir, resolve=resolve)
        provider = OpenCodeProvider(
            settings.provider, binary=binary, data_dir=data_dir, agent_tools=bridge
        )
        box = World(data_dir, api, provider, echo)
        async with bridge:
            try:
                yield box
            finally:
                await provider.aclose()


@pytest.fixture
def echo(world: World) -> EchoTool:
    world.echo.calls.clear()
    return world.echo


@contextlib.contextmanager
def provider_settings(world: World, **provider: Any) -> Iterator[None]:
    """The module's provider reads its own settings (allowed_tools, ...): these, for a while."""
    shared = world.provider.settings
    world.provider.settings = world.settings(**provider).provider
    try:
        yield
    finally:
        world.provider.settings = shared


def engine_for(world: World, **kwargs: Any) -> Engine:
    settings = kwargs.pop("settings", None) or world.settings()
    engine = Engine(settings, Shared(world.provider), **kwargs)
    world.engine = engine
    return engine


async def test_approved_call_runs_the_handler_for_its_session(world: World, echo: EchoTool) -> None:
    async with engine_for(world) as engine:
        turn = await engine.execute("k", PROMPT, user="alice", address="test:chan")
        request = await next_event(turn, "permission_request", TURN)
        assert request.data["tool"] == TOOL and request.data["input"] == {"text": "hi"}
        assert echo.calls == []  # nothing runs before the person decides
        await engine.approvals.decide(request.data["permission_id"], "allow", by="alice")
        events = await turn.collect(TURN)
        session_id = engine.session_id("k")
        work_dir = engine.sessions()[0].work_dir
        status = await world.provider.request("GET", "/mcp", directory=str(work_dir))
    assert status == {"hotplex": {"status": "connected"}}
    assert len(echo.calls) == 1
    args, ctx = echo.calls[0]
    assert args == {"text": "hi"}
    assert ctx.session_id == session_id and ctx.address == "test:chan"
    assert f"ECHOED<hi> for {session_id}" in texts(events)
    assert events[-1].data["status"] == "ok"
    grants = world.provider.agent_tool_grants()
    assert grants is not None and len(grants) == 0  # used up


async def test_denied_call_does_not_run(world: World, echo: EchoTool) -> None:
    async with engine_for(world) as engine:
        turn = await engine.execute("k", PROMPT, user="alice")
        request = await next_event(turn, "permission_request", TURN)
        await engine.approvals.decide(
            request.data["permission_id"], "deny", by="alice", reason="not now"
        )
        events = await turn.collect(TURN)
    assert echo.calls == []
    result = next(e for e in events if e.type == "tool_result")
    assert result.data["is_error"] and "not now" in result.data["output"]
    assert "ECHOED" not in json.dumps([e.data for e in events])
    assert events[-1].data["status"] == "ok"


class DenyHotplex:
    name = "deny-hotplex"

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def check(self, call: ToolCall) -> PolicyVerdict | None:
        self.seen.append((call.request.stage, call.request.tool))
        if call.request.tool == TOOL:
            return PolicyVerdict("deny", "no agent tools here", rule="test.no-hotplex")
        return None


async def test_a_policy_denies_an_allowed_tool(world: World, echo: EchoTool) -> None:
    policy = DenyHotplex()
    with provider_settings(world, allowed_tools=[TOOL]):
        async with engine_for(world, policies=[policy]) as engine:
            events = await (await engine.execute("k", PROMPT, user="alice")).collect(TURN)
    assert ("pre", TOOL) in policy.seen and echo.calls == []
    assert "permission_request" not in [e.type for e in events]
    result = next(e for e in events if e.type == "tool_result")
    assert result.data["is_error"] and "test.no-hotplex" in result.data["output"]


async def test_sessions_sharing_a_directory_get_their_own_calls(
    world: World, echo: EchoTool, tmp_path: Path
) -> None:
    """Two sessions in one work directory (one MCP server process) make the same call at
    once: each handler run belongs to the session that made it."""
    seen: list[ToolRequest] = []

    async def allow(request: ToolRequest) -> ToolDecision:
        seen.append(request)
        return ToolDecision("allow")

    world.engine = None
    work = tmp_path / "shared-work"
    sessions = []
    for name in ("left", "right"):
        spec = AgentStartSpec(
            session_id=name,
            provider_session_id=f"p-{name}",
            resume=False,
            work_dir=work,
            state_dir=tmp_path / "state" / name,
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": os.environ.get("HOME", "/root"),
                "ANTHROPIC_BASE_URL": world.api.base_url,
                "ANTHROPIC_API_KEY": "sk-test",
            },
        )
        sessions.append(await world.provider.start(spec, allow))

    async def run(session: OpenCodeSession) -> list[AgentEvent]:
        async with asyncio.timeout(TURN):
            return [event async for event in session.turn(PROMPT)]

    try:
        left, right = await asyncio.gather(*(run(s) for s in sessions))
    finally:
        for session in sessions:
            await session.close()
    assert sorted(ctx.session_id for _, ctx in echo.calls) == ["left", "right"]
    assert "ECHOED<hi> for left" in texts(left) and "for right" not in texts(left)
    assert "ECHOED<hi> for right" in texts(right) and "for left" not in texts(right)
    assert [(r.stage, r.tool) for r in seen] == [("pre", TOOL)] * 2


@pytest.mark.parametrize("where", ["allowed_tools", "unattended"])
async def test_claude_codes_spelling_holds_on_opencode(
    world: World, echo: EchoTool, where: str
) -> None:
    """``mcp__hotplex__echo`` in provider.allowed_tools or an unattended session's
    allow_tools lets OpenCode's ``hotplex_echo`` run without asking anyone."""
    rule = "mcp__hotplex__echo"
    policy = AllowTools(allow_tools=(rule,)) if where == "unattended" else None
    allowed = [rule] if where == "allowed_tools" else []
    with provider_settings(world, allowed_tools=allowed):
        async with engine_for(world) as engine:
            turn = await engine.execute("k", PROMPT, user="alice", policy=policy)
            events = await turn.collect(TURN)
            session_id = engine.session_id("k")
    assert "permission_request" not in [e.type for e in events]
    assert [ctx.session_id for _, ctx in echo.calls] == [session_id]
    assert f"ECHOED<hi> for {session_id}" in texts(events)
