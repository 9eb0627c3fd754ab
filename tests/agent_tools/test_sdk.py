"""The in-process ``hotplex`` MCP server: JSON-RPC answers for one agent's session."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from hotplex.agent_tools import AgentToolBridge, SdkServer
from hotplex.context import PluginContext
from hotplex.testing.fakes import EchoTool

CONTEXT = cast(PluginContext, object())


def bridge(echo: EchoTool, tmp_path: Path) -> AgentToolBridge:
    def resolve(session: str) -> tuple[str, str | None] | None:
        return ("sess-1", "slack:C1") if session == "spare-uuid" else None

    return AgentToolBridge({"echo": echo.spec()}, CONTEXT, data_dir=tmp_path, resolve=resolve)


async def test_handshake_list_and_call(tmp_path: Path) -> None:
    echo = EchoTool()
    server = SdkServer(bridge(echo, tmp_path), "spare-uuid")
    init = await server.handle(
        {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "X"}}
    )
    assert init["id"] == 0 and init["result"]["protocolVersion"] == "X"
    assert init["result"]["serverInfo"]["name"] == "hotplex"
    note = await server.handle({"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert note == {"jsonrpc": "2.0", "result": {}}
    listed = await server.handle({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert [t["name"] for t in listed["result"]["tools"]] == ["echo"]
    call = await server.handle(
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "hi"}, "_meta": {"x": 1}},
        }
    )
    assert call["result"]["content"][0]["text"] == "ECHOED<hi> for sess-1"
    assert echo.calls[0][0] == {"text": "hi"}
    assert (echo.calls[0][1].session_id, echo.calls[0][1].address) == ("sess-1", "slack:C1")


async def test_errors_are_json_rpc_errors(tmp_path: Path) -> None:
    server = SdkServer(bridge(EchoTool(), tmp_path), "s")
    unknown = await server.handle(
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "nope"}}
    )
    assert unknown["id"] == 3 and unknown["error"]["code"] == -32602
    missing = await server.handle({"jsonrpc": "2.0", "id": 4, "method": "resources/list"})
    assert missing["error"]["code"] == -32601
