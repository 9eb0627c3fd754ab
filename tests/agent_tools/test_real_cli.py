"""Acceptance: the real pinned Claude Code CLI calls a plugin's agent tool on the hotplex
MCP server, served in-process over the control protocol (no helper process), through the
engine's approvals, against the fake Anthropic API."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from hotplex.agent_tools import AgentToolBridge
from hotplex.config import AllowTools, Settings
from hotplex.context import PluginContext
from hotplex.engine.engine import Engine
from hotplex.engine.policy import PolicyVerdict, ToolCall
from hotplex.events import AuditEvent
from hotplex.providers.claude_code import ClaudeCodeProvider
from hotplex.testing.fake_anthropic import FakeAnthropic
from hotplex.testing.fakes import EchoTool
from hotplex.testing.turns import next_event, texts

pytestmark = pytest.mark.real_cli
TURN = 60.0
PROMPT = 'MCP: mcp__hotplex__echo {"text": "hi"}'


class Box:
    """An engine on the real CLI with the agent tools served in-process; the bridge's
    resolver finds the engine's sessions."""

    def __init__(self, settings: Settings, echo: EchoTool, **engine: Any) -> None:
        context = cast(PluginContext, object())
        self.audits: list[AuditEvent] = []
        self.audited = asyncio.Event()
        self.bridge = AgentToolBridge(
            {"echo": echo.spec()},
            context,
            data_dir=settings.engine.data_dir,
            resolve=self.resolve,
            audit=self.audit,
        )
        provider = ClaudeCodeProvider(settings.provider, agent_tools=self.bridge)
        self.engine = Engine(settings, provider, **engine)

    def resolve(self, session_id: str) -> tuple[str, str | None] | None:
        session = self.engine.get(session_id)
        return (session.session_id, session.address) if session is not None else None

    async def audit(self, event: AuditEvent) -> None:
        self.audits.append(event)
        self.audited.set()


async def test_agent_tool_approved_runs_the_handler(
    fake_api: FakeAnthropic, claude_settings: Callable[..., Any]
) -> None:
    settings = claude_settings()
    echo = EchoTool()
    async with Box(settings, echo).engine as engine:
        turn = await engine.execute("k", PROMPT, user="alice", address="test:chan")
        request = await next_event(turn, "permission_request", TURN)
        assert request.data["tool"] == "mcp__hotplex__echo"
        assert echo.calls == []  # nothing runs before the person decides
        await engine.approvals.decide(request.data["permission_id"], "allow", by="alice")
        events = await turn.collect(TURN)
        session_id = engine.session_id("k")
    assert len(echo.calls) == 1
    args, ctx = echo.calls[0]
    assert args == {"text": "hi"}
    assert ctx.session_id == session_id and ctx.address == "test:chan"
    assert "tool said:" in texts(events) and "ECHOED<hi>" in texts(events)
    assert events[-1].data["status"] == "ok"


async def test_agent_tool_denied_does_not_run(
    fake_api: FakeAnthropic, claude_settings: Callable[..., Any]
) -> None:
    settings = claude_settings()
    echo = EchoTool()
    async with Box(settings, echo).engine as engine:
        turn = await engine.execute("k", PROMPT, user="alice")
        request = await next_event(turn, "permission_request", TURN)
        assert request.data["tool"] == "mcp__hotplex__echo"
        await engine.approvals.decide(
            request.data["permission_id"], "deny", by="alice", reason="not now"
        )
        events = await turn.collect(TURN)
    assert echo.calls == []
    result = next(e for e in events if e.type == "tool_result")
    assert result.data["is_error"] and "not now" in result.data["output"]
    assert "ECHOED" not in json.dumps([e.data for e in events])


@pytest.mark.parametrize("rule", ["mcp__hotplex__echo", "hotplex_echo"])
async def test_allowed_tools_skips_the_question_and_keeps_user_servers(
    fake_api: FakeAnthropic, claude_settings: Callable[..., Any], rule: str
) -> None:
    """Either spelling of the tool (Claude Code's or OpenCode's) in provider.allowed_tools."""
    user_config = {"mcpServers": {"broken": {"type": "stdio", "command": "/nonexistent"}}}
    settings = claude_settings(allowed_tools=[rule], mcp_config=json.dumps(user_config))
    echo = EchoTool()
    async with Box(settings, echo).engine as engine:
        events = await (await engine.execute("k", PROMPT, user="alice")).collect(TURN)
    assert "permission_request" not in [e.type for e in events]
    assert len(echo.calls) == 1 and "ECHOED<hi>" in texts(events)


class DenyHotplex:
    name = "deny-hotplex"

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def check(self, call: ToolCall) -> PolicyVerdict | None:
        self.seen.append((call.request.stage, call.request.tool))
        if call.request.tool.startswith("mcp__hotplex__"):
            return PolicyVerdict("deny", "no agent tools here", rule="test.no-hotplex")
        return None


async def test_pre_tool_hook_sees_agent_tools_even_when_allowed(
    fake_api: FakeAnthropic, claude_settings: Callable[..., Any]
) -> None:
    settings = claude_settings(allowed_tools=["mcp__hotplex__echo"])
    echo = EchoTool()
    policy = DenyHotplex()
    async with Box(settings, echo, policies=[policy]).engine as engine:
        events = await (await engine.execute("k", PROMPT, user="alice")).collect(TURN)
    assert ("pre", "mcp__hotplex__echo") in policy.seen
    assert echo.calls == []
    result = next(e for e in events if e.type == "tool_result")
    assert result.data["is_error"] and "test.no-hotplex" in result.data["output"]


def process_tree(pid: int) -> list[str]:
    """The command lines of ``pid``'s descendants."""
    found: list[str] = []
    todo = [pid]
    while todo and len(found) < 1000:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                try:
                    found.append(Path(f"/proc/{child}/cmdline").read_bytes().decode())
                except OSError:
                    continue
                todo.append(child)
    return found


async def test_two_sessions_at_once_each_handler_sees_its_own(
    fake_api: FakeAnthropic, claude_settings: Callable[..., Any]
) -> None:
    settings = claude_settings(allowed_tools=["mcp__hotplex__echo"])
    echo = EchoTool()
    async with Box(settings, echo).engine as engine:
        turns = [
            await engine.execute(key, PROMPT, user="alice", address=f"test:{key}")
            for key in ("left", "right")
        ]
        left, right = [await turn.collect(TURN) for turn in turns]
        ids = {key: engine.session_id(key) for key in ("left", "right")}
        pids = [engine.get(ids[key]).process.pid for key in ids]  # type: ignore[union-attr]
        trees = [process_tree(pid) for pid in pids if pid is not None]
    assert sorted((ctx.session_id, ctx.address) for _, ctx in echo.calls) == sorted(
        (ids[key], f"test:{key}") for key in ids
    )
    assert f"ECHOED<hi> for {ids['left']}" in texts(left)
    assert f"ECHOED<hi> for {ids['right']}" in texts(right)
    assert len(trees) == 2  # and no helper process serves the tools
    assert not [cmd for tree in trees for cmd in tree if "hotplex" in cmd]


FORGE = """
import sys
with open(f"/proc/{sys.argv[1]}/fd/1", "w") as pipe:
    pipe.write(sys.argv[2] + "\\n")
"""


async def test_a_call_forged_into_the_agents_pipe_is_refused_and_audited(
    fake_api: FakeAnthropic, claude_settings: Callable[..., Any]
) -> None:
    """Another process of the daemon's user writes an ``mcp_message`` tools/call into the
    agent's stdout pipe (``/proc/<pid>/fd/1``), the channel the daemon reads: it names no
    tool use the gate let through, so the handler does not run."""
    settings = claude_settings(allowed_tools=["mcp__hotplex__echo"])
    echo = EchoTool()
    box = Box(settings, echo)
    async with box.engine as engine:
        await (await engine.execute("k", "hi", user="alice")).collect(TURN)
        session_id = engine.session_id("k")
        process = engine.get(session_id).process  # type: ignore[union-attr]
        assert process is not None and process.pid is not None
        message = {
            "jsonrpc": "2.0",
            "id": 99,
            "method": "tools/call",
            "params": {
                "name": "echo",
                "arguments": {"text": "forged"},
                "_meta": {"claudecode/toolUseId": "toolu_forged"},
            },
        }
        forged = {
            "type": "control_request",
            "request_id": "forged-1",
            "request": {"subtype": "mcp_message", "server_name": "hotplex", "message": message},
        }
        writer = await asyncio.create_subprocess_exec(
            sys.executable, "-c", FORGE, str(process.pid), json.dumps(forged)
        )
        assert await asyncio.wait_for(writer.wait(), 10) == 0
        await asyncio.wait_for(box.audited.wait(), 10)
        events = await (await engine.execute("k", PROMPT, user="alice")).collect(TURN)
    assert [(e.type, e.session_id, e.data["tool"]) for e in box.audits] == [
        ("agent_tool.refused", session_id, "echo")
    ]
    assert box.audits[0].data["reason"] == "no approved tool use"
    assert [args for args, _ in echo.calls] == [{"text": "hi"}]  # only the agent's own call
    assert f"ECHOED<hi> for {session_id}" in texts(events)


async def test_unattended_allow_tools_in_opencodes_spelling(
    fake_api: FakeAnthropic, claude_settings: Callable[..., Any]
) -> None:
    """An unattended session whose allow_tools names the tool as OpenCode does runs it on
    Claude Code without asking anyone; a session-scope approval names it once for both."""
    echo = EchoTool()
    async with Box(claude_settings(), echo).engine as engine:
        policy = AllowTools(allow_tools=("hotplex_echo",))
        events = await (await engine.execute("cron", PROMPT, policy=policy)).collect(TURN)
    assert "permission_request" not in [e.type for e in events]
    assert len(echo.calls) == 1 and "ECHOED<hi>" in texts(events)


@pytest.mark.parametrize("mode", ["bypassPermissions", "acceptEdits"])
async def test_permission_modes_that_ask_nobody_still_run_the_tool(
    fake_api: FakeAnthropic, claude_settings: Callable[..., Any], mode: str
) -> None:
    """The PreToolUse hook sees every call whatever the mode, so the call it let through
    has its approval and runs."""
    echo = EchoTool()
    settings = claude_settings(permission_mode=mode, allowed_tools=["mcp__hotplex__echo"])
    async with Box(settings, echo).engine as engine:
        events = await (await engine.execute("k", PROMPT, user="alice")).collect(TURN)
    assert len(echo.calls) == 1 and "ECHOED<hi>" in texts(events)
