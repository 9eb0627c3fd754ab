"""The in-process ``hotplex`` MCP server: JSON-RPC answers for one agent's session, and a
call runs only as a tool use the gate let through (refused and audited otherwise)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from hotplex.agent_tools import AgentToolBridge, SdkServer
from hotplex.context import PluginContext
from hotplex.events import AuditEvent
from hotplex.testing.fakes import EchoTool

CONTEXT = cast(PluginContext, object())


class Audits:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def __call__(self, event: AuditEvent) -> None:
        self.events.append(event)


def bridge(echo: EchoTool, tmp_path: Path, audits: Audits | None = None) -> AgentToolBridge:
    def resolve(session: str) -> tuple[str, str | None] | None:
        return ("sess-1", "slack:C1") if session == "spare-uuid" else None

    return AgentToolBridge(
        {"echo": echo.spec()}, CONTEXT, data_dir=tmp_path, resolve=resolve, audit=audits
    )


def call(text: str, tool_use_id: str | None, name: str = "echo") -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": {"text": text}}
    if tool_use_id is not None:
        params["_meta"] = {"claudecode/toolUseId": tool_use_id, "progressToken": 2}
    return {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params}


async def test_handshake_list_and_an_approved_call(tmp_path: Path) -> None:
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
    server.approve("toolu_1", "mcp__hotplex__echo", {"text": "hi"})
    reply = await server.handle(call("hi", "toolu_1"))
    assert reply["result"]["content"][0]["text"] == "ECHOED<hi> for sess-1"
    assert echo.calls[0][0] == {"text": "hi"}
    assert (echo.calls[0][1].session_id, echo.calls[0][1].address) == ("sess-1", "slack:C1")


async def test_calls_the_gate_did_not_let_through_are_refused_and_audited(
    tmp_path: Path,
) -> None:
    echo = EchoTool()
    audits = Audits()
    server = SdkServer(bridge(echo, tmp_path, audits), "spare-uuid")
    server.approve("toolu_1", "mcp__hotplex__echo", {"text": "hi"})
    server.approve("toolu_2", "Bash", {"command": "ls"})  # not ours: ignored
    server.approve("toolu_3", "mcp__hotplex__echo", {"text": "hi"})
    server.withdraw("toolu_3")  # a person said no after the hook
    refused = [
        await server.handle(call("hi", None)),  # no tool use named
        await server.handle(call("hi", "toolu_9")),  # not one the gate saw
        await server.handle(call("other", "toolu_1")),  # other arguments (uses it up)
        await server.handle(call("hi", "toolu_1")),  # used up
        await server.handle(call("hi", "toolu_2")),
        await server.handle(call("hi", "toolu_3")),
    ]
    for reply in refused:
        assert (
            reply["result"]["isError"] and "not approved" in reply["result"]["content"][0]["text"]
        )
    assert echo.calls == []
    assert [e.type for e in audits.events] == ["agent_tool.refused"] * len(refused)
    first = audits.events[0]
    assert first.session_id == "sess-1" and first.data["tool"] == "echo"
    assert audits.events[2].data["reason"] == "not the approved call"


async def test_errors_are_json_rpc_errors(tmp_path: Path) -> None:
    server = SdkServer(bridge(EchoTool(), tmp_path), "s")
    server.approve("toolu_1", "mcp__hotplex__nope", {"text": "x"})
    unknown = await server.handle(call("x", "toolu_1", name="nope"))
    assert unknown["id"] == 2 and unknown["error"]["code"] == -32602
    missing = await server.handle({"jsonrpc": "2.0", "id": 4, "method": "resources/list"})
    assert missing["error"]["code"] == -32601
