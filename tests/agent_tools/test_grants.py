"""Grants: how the bridge attributes calls from a server shared by the sessions of a work
directory (OpenCode's), and refuses calls nobody approved."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from hotplex.agent_tools import AgentToolBridge, CallGrants, opencode_tool_name
from hotplex.context import PluginContext
from hotplex.testing.fakes import EchoTool

CONTEXT = cast(PluginContext, object())


def test_opencode_names_tools_like_opencode() -> None:
    assert opencode_tool_name("hotplex", "echo") == "hotplex_echo"
    assert opencode_tool_name("hotplex", "send.file v2") == "hotplex_send_file_v2"


async def test_a_grant_is_used_once() -> None:
    grants = CallGrants({"hotplex_echo"})
    await grants.grant("a", "/w", "hotplex_echo", {"text": "hi", "n": 1}, timeout=1)
    assert grants.take("/w", "hotplex_echo", {"text": "other"}) is None
    assert grants.take("/elsewhere", "hotplex_echo", {"n": 1, "text": "hi"}) is None
    assert grants.take("/w", "hotplex_echo", {"n": 1, "text": "hi"}) == "a"
    assert grants.take("/w", "hotplex_echo", {"n": 1, "text": "hi"}) is None


async def test_same_session_grants_stack_and_expire() -> None:
    now = [100.0]
    grants = CallGrants(ttl=30, clock=lambda: now[0])
    for _ in range(2):
        await grants.grant("a", "/w", "t", {}, timeout=1)
    assert len(grants) == 2 and grants.take("/w", "t", {}) == "a"
    held = await grants.grant("b", "/w", "t", {}, timeout=0.05)
    assert held is None  # a's second grant still stands
    now[0] += 31
    assert grants.take("/w", "t", {}) is None and len(grants) == 0


async def test_another_sessions_grant_waits_for_the_first_call() -> None:
    grants = CallGrants()
    first = await grants.grant("a", "/w", "t", {"x": 1}, timeout=1)
    assert first is not None
    waiting = asyncio.create_task(grants.grant("b", "/w", "t", {"x": 1}, timeout=5))
    other = await grants.grant("c", "/w", "t", {"x": 2}, timeout=1)  # another call: at once
    assert other is not None and not waiting.done()
    assert grants.take("/w", "t", {"x": 1}) == "a"
    second = await asyncio.wait_for(waiting, 5)
    assert second is not None and grants.take("/w", "t", {"x": 1}) == "b"
    revoked = await grants.grant("a", "/w", "t", {"x": 1}, timeout=1)
    assert revoked is not None
    grants.revoke(revoked)
    assert grants.take("/w", "t", {"x": 1}) is None
    assert await grants.grant("a", "/w", "t", {"x": 2}, timeout=0.05) is None  # c holds it


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[tuple[AgentToolBridge, EchoTool]]:
    echo = EchoTool()
    spec = echo.spec()
    async with AgentToolBridge({"echo": spec}, CONTEXT, data_dir=tmp_path / "d") as running:
        yield running, echo


async def call_shared(entry: dict[str, Any], directory: Path, text: str) -> dict[str, Any]:
    """One tools/call through the real stdio server of ``entry``, started in ``directory``."""
    proc = await asyncio.create_subprocess_exec(
        entry["command"],
        *entry["args"],
        cwd=directory,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
    message["params"] = {"name": "echo", "arguments": {"text": text}}
    out, _ = await asyncio.wait_for(proc.communicate(json.dumps(message).encode() + b"\n"), 20)
    reply: dict[str, Any] = json.loads(out)
    return reply


async def test_a_shared_servers_call_runs_only_against_a_grant(
    bridge: tuple[AgentToolBridge, EchoTool], tmp_path: Path
) -> None:
    running, echo = bridge
    grants = running.grants
    assert grants.tools == {"hotplex_echo"}
    entry = await running.shared_server()
    work = tmp_path / "work"
    work.mkdir()
    refused = (await call_shared(entry, work, "hi"))["result"]
    assert refused["isError"] and "not approved" in refused["content"][0]["text"]
    assert echo.calls == []
    await grants.grant("s-1", str(work.resolve()), "hotplex_echo", {"text": "hi"}, timeout=1)
    done = (await call_shared(entry, work, "hi"))["result"]
    assert done == {"content": [{"type": "text", "text": "ECHOED<hi> for s-1"}], "isError": False}
    assert (await call_shared(entry, work, "hi"))["result"]["isError"]  # used up
    assert len(echo.calls) == 1
