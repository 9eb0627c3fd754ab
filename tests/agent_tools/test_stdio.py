"""The stdio MCP server (a real subprocess, started as OpenCode starts it: in a work
directory) against a bridge started in the test."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from hotplex.agent_tools import AgentToolBridge, merge_mcp_config, socket_path
from hotplex.agent_tools.config import STDIO_SCRIPT
from hotplex.context import PluginContext
from hotplex.errors import ConfigError
from hotplex.records import AgentToolSpec, ToolCallContext

CONTEXT = cast(PluginContext, object())
SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}}


class Tools:
    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], ToolCallContext]] = []

    async def echo(self, args: dict[str, Any], ctx: ToolCallContext) -> str:
        self.calls.append((args, ctx))
        return f"echo: {args.get('text')}"

    async def data(self, args: dict[str, Any], ctx: ToolCallContext) -> Any:
        return {"n": 1, "items": ["a"]}

    async def boom(self, args: dict[str, Any], ctx: ToolCallContext) -> str:
        raise RuntimeError("kaput")

    async def slow(self, args: dict[str, Any], ctx: ToolCallContext) -> str:
        await asyncio.sleep(10)
        return "late"

    def specs(self) -> dict[str, AgentToolSpec]:
        return {
            "echo": AgentToolSpec("echo", "Echo", SCHEMA, self.echo),
            "data": AgentToolSpec("data", "Data", {"type": "object"}, self.data),
            "boom": AgentToolSpec("boom", "Fails", {"type": "object"}, self.boom),
            "slow": AgentToolSpec("slow", "Slow", {"type": "object"}, self.slow),
        }


class Client:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.next_id = 0

    async def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        await self.proc.stdin.drain()

    async def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 10)
        assert line, "the server closed stdout"
        return cast(dict[str, Any], json.loads(line))

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(message)
        reply = await self.read()
        assert reply["id"] == self.next_id and reply["jsonrpc"] == "2.0"
        return reply


@pytest.fixture
def tools() -> Tools:
    return Tools()


@pytest.fixture
async def bridge(tmp_path: Path, tools: Tools) -> AsyncIterator[AgentToolBridge]:
    def resolve(session: str) -> tuple[str, str | None] | None:
        return ("sess-1", "slack:C1") if session == "spare-uuid" else None

    async with AgentToolBridge(
        tools.specs(), CONTEXT, data_dir=tmp_path / "data", resolve=resolve, call_timeout=0.5
    ) as running:
        yield running


async def spawn(entry: dict[str, Any], cwd: Path) -> Client:
    proc = await asyncio.create_subprocess_exec(
        entry["command"],
        *entry["args"],
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    return Client(proc)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path.resolve()


@pytest.fixture
async def client(bridge: AgentToolBridge, work: Path) -> AsyncIterator[Client]:
    client = await spawn(await bridge.shared_server(), work)
    yield client
    assert client.proc.stdin is not None
    client.proc.stdin.close()
    assert await asyncio.wait_for(client.proc.wait(), 10) == 0


async def grant(bridge: AgentToolBridge, work: Path, name: str, arguments: dict[str, Any]) -> None:
    await bridge.grants.grant("spare-uuid", str(work), f"hotplex_{name}", arguments, timeout=1)


async def test_initialize_and_list(client: Client) -> None:
    init = await client.call(
        "initialize",
        {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t"}},
    )
    assert init["result"]["protocolVersion"] == "2025-06-18"
    assert "tools" in init["result"]["capabilities"]
    assert init["result"]["serverInfo"]["name"] == "hotplex"
    await client.send({"jsonrpc": "2.0", "method": "notifications/initialized"})  # no reply
    assert (await client.call("ping"))["result"] == {}
    listed = (await client.call("tools/list"))["result"]["tools"]
    assert [t["name"] for t in listed] == ["echo", "data", "boom", "slow"]
    assert listed[0] == {"name": "echo", "description": "Echo", "inputSchema": SCHEMA}


async def test_call_runs_the_handler_for_the_grants_session(
    client: Client, tools: Tools, bridge: AgentToolBridge, work: Path
) -> None:
    await grant(bridge, work, "echo", {"text": "hi"})
    reply = await client.call("tools/call", {"name": "echo", "arguments": {"text": "hi"}})
    assert reply["result"] == {"content": [{"type": "text", "text": "echo: hi"}], "isError": False}
    args, ctx = tools.calls[0]
    assert args == {"text": "hi"}
    assert (ctx.session_id, ctx.address) == ("sess-1", "slack:C1")
    assert ctx.plugin_context is CONTEXT
    await grant(bridge, work, "data", {})
    data = await client.call("tools/call", {"name": "data", "arguments": {}})
    assert json.loads(data["result"]["content"][0]["text"]) == {"n": 1, "items": ["a"]}


async def test_errors(client: Client, bridge: AgentToolBridge, work: Path) -> None:
    unknown = await client.call("tools/call", {"name": "nope", "arguments": {}})
    assert unknown["error"]["code"] == -32602 and "unknown tool" in unknown["error"]["message"]
    await grant(bridge, work, "boom", {})
    boom = (await client.call("tools/call", {"name": "boom", "arguments": {}}))["result"]
    assert boom["isError"] and "RuntimeError: kaput" in boom["content"][0]["text"]
    await grant(bridge, work, "slow", {})
    slow = (await client.call("tools/call", {"name": "slow", "arguments": {}}))["result"]
    assert slow["isError"] and "timed out" in slow["content"][0]["text"]
    missing = await client.call("resources/list")
    assert missing["error"]["code"] == -32601


async def test_bridge_unreachable_is_a_clear_error(tmp_path: Path, work: Path) -> None:
    client = await spawn(
        {"command": sys.executable, "args": ["-I", str(STDIO_SCRIPT), "--socket", "none.sock"]},
        work,
    )
    reply = await client.call("tools/list")
    assert "not reachable" in reply["error"]["message"]
    assert (await client.call("initialize", {}))["result"]["serverInfo"]["name"] == "hotplex"
    client.proc.kill()
    await client.proc.wait()


async def test_the_socket_opens_on_first_use_and_closes(bridge: AgentToolBridge) -> None:
    assert not bridge.socket.serving and not bridge.socket.path.exists()
    entry = await bridge.shared_server()
    assert entry == await bridge.shared_server()  # once
    assert entry["args"][-2:] == ["--socket", str(bridge.socket.path)]
    assert stat.S_IMODE(os.stat(bridge.socket.path).st_mode) == 0o600
    await bridge.aclose()
    assert not bridge.socket.serving and not bridge.socket.path.exists()


async def test_the_helper_imports_only_the_standard_library(
    bridge: AgentToolBridge, work: Path
) -> None:
    entry = await bridge.shared_server()
    proc = await asyncio.create_subprocess_exec(
        entry["command"],
        "-X",
        "importtime",
        *entry["args"],
        cwd=work,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(b""), 20)
    imported = [line.rsplit("|", 1)[-1].strip() for line in err.decode().splitlines()]
    assert "json" in imported and "socket" in imported  # the report is there
    assert not [name for name in imported if name.split(".")[0] in ("hotplex", "pydantic")]


def test_long_data_dir_gets_a_short_socket(tmp_path: Path) -> None:
    path = socket_path(tmp_path / ("x" * 120))
    assert len(str(path)) < 100 and path.name.endswith(".sock")


def test_merge_mcp_config(tmp_path: Path) -> None:
    ours = {"hotplex": {"type": "stdio", "command": "py"}}
    assert json.loads(merge_mcp_config(None, ours)) == {"mcpServers": ours}
    user = {"mcpServers": {"x": {"command": "x"}, "hotplex": {"command": "evil"}}}
    merged = json.loads(merge_mcp_config(json.dumps(user), ours))["mcpServers"]
    assert merged == {"x": {"command": "x"}, **ours}
    file = tmp_path / "mcp.json"
    file.write_text(json.dumps(user))
    assert "x" in json.loads(merge_mcp_config(str(file), ours))["mcpServers"]
    with pytest.raises(ConfigError):
        merge_mcp_config("{not json", ours)
    with pytest.raises(ConfigError):
        merge_mcp_config(str(tmp_path / "missing.json"), ours)
