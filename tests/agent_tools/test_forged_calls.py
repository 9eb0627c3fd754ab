"""The bridge's socket trusts no one's word: another process of the daemon's user that
connects and names a session (or a directory nobody approved a call for) is refused, the
handler does not run, and the refusal is audited."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from hotplex.agent_tools import AgentToolBridge
from hotplex.context import PluginContext
from hotplex.events import AuditEvent
from hotplex.testing.fakes import EchoTool

FORGER = """
import json, socket, sys
with socket.socket(socket.AF_UNIX) as sock:
    sock.settimeout(10)
    sock.connect(sys.argv[1])
    sock.sendall(sys.argv[2].encode() + b"\\n")
    print(sock.makefile().readline(), end="")
"""


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.echo = EchoTool()
        self.audits: list[AuditEvent] = []
        self.bridge = AgentToolBridge(
            {"echo": self.echo.spec()},
            cast(PluginContext, object()),
            data_dir=tmp_path / "data",
            resolve=lambda s: (s, "slack:T/C") if s == "victim" else None,
            audit=self.audit,
        )

    async def audit(self, event: AuditEvent) -> None:
        self.audits.append(event)

    async def forge(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request from another process, straight to the socket."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            FORGER,
            str(self.bridge.socket.path),
            json.dumps(request),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0
        return cast(dict[str, Any], json.loads(out))


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    box = World(tmp_path)
    async with box.bridge:
        await box.bridge.shared_server()  # the socket OpenCode's servers use
        yield box


CALL = {"name": "echo", "arguments": {"text": "pwned"}}


async def test_a_call_naming_a_session_is_refused_and_audited(world: World) -> None:
    reply = await world.forge(
        {"id": 1, "method": "tools/call", "session": "victim", "params": CALL}
    )
    assert reply["id"] == 1 and "refused" in reply["error"]["message"]
    assert world.echo.calls == []
    [event] = world.audits
    assert event.type == "agent_tool.refused" and event.session_id == "victim"
    assert event.data["tool"] == "echo" and event.actor == "system"


async def test_a_call_naming_a_directory_without_an_approval_is_refused_and_audited(
    world: World, tmp_path: Path
) -> None:
    directory = str(tmp_path)
    request = {"id": 2, "method": "tools/call", "directory": directory, "params": CALL}
    reply = await world.forge(request)
    assert reply["result"]["isError"] and "not approved" in reply["result"]["content"][0]["text"]
    assert world.echo.calls == []
    [event] = world.audits
    assert event.type == "agent_tool.refused" and event.data["directory"] == directory
    # with the gate's grant the same call runs, once, for the granted session
    await world.bridge.grants.grant(
        "victim", directory, "hotplex_echo", CALL["arguments"], timeout=1
    )  # type: ignore[arg-type]
    done = await world.forge(request)
    assert done["result"]["content"][0]["text"] == "ECHOED<pwned> for victim"
