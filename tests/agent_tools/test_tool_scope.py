"""An agent tool's own timeout and platforms: a tool scoped to platforms is listed for and
callable by only the sessions whose address is on them; a tool's ``timeout`` replaces the
bridge's default per-call limit."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any, cast

from hotplex.agent_tools import AgentToolBridge, SdkServer
from hotplex.context import PluginContext
from hotplex.events import AuditEvent
from hotplex.records import AgentToolSpec, ToolCallContext
from hotplex.testing.fakes import EchoTool

CONTEXT = cast(PluginContext, object())
ADDRESSES = {"s-slack": "slack:T1/C1", "s-web": "web:default/s1", "s-none": None}


def resolve(session: str) -> tuple[str, str | None] | None:
    return (session, ADDRESSES[session]) if session in ADDRESSES else None


def bridge_for(
    tmp_path: Path,
    *specs: AgentToolSpec,
    call_timeout: float = 60.0,
    audits: list[AuditEvent] | None = None,
) -> AgentToolBridge:
    async def audit(event: AuditEvent) -> None:
        if audits is not None:
            audits.append(event)

    return AgentToolBridge(
        {s.name: s for s in specs},
        CONTEXT,
        data_dir=tmp_path / "d",
        resolve=resolve,
        audit=audit,
        call_timeout=call_timeout,
    )


def listed(bridge: AgentToolBridge, session: str) -> set[str]:
    return {t["name"] for t in bridge.catalog(session)}


async def call(bridge: AgentToolBridge, session: str, name: str) -> dict[str, Any]:
    return await bridge.call({"name": name, "arguments": {"text": "hi"}}, session=session)


async def test_a_platform_scoped_tool_is_offered_and_callable_only_there(tmp_path: Path) -> None:
    echo = EchoTool()
    scoped = dataclasses.replace(echo.spec(), name="slack_only", platforms=("slack", "feishu"))
    audits: list[AuditEvent] = []
    bridge = bridge_for(tmp_path, scoped, echo.spec(), audits=audits)
    assert listed(bridge, "s-slack") == {"slack_only", "echo"}
    assert listed(bridge, "s-web") == {"echo"}
    assert listed(bridge, "s-none") == {"echo"}
    # a spare agent lists before any session took it: everything (its calls are checked)
    assert listed(bridge, "spare-not-taken-yet") == {"slack_only", "echo"}
    # what Claude Code's in-process server answers for the session
    reply = await SdkServer(bridge, "s-web").handle({"id": 1, "method": "tools/list"})
    assert [t["name"] for t in reply["result"]["tools"]] == ["echo"]

    refused = await call(bridge, "s-web", "slack_only")
    assert refused["isError"] and "not available" in refused["content"][0]["text"]
    assert (await call(bridge, "s-none", "slack_only"))["isError"]
    assert echo.calls == []  # the handler never ran for a refused call
    assert [e.data["reason"] for e in audits] == ["not offered to this conversation"] * 2
    allowed = await call(bridge, "s-slack", "slack_only")
    assert not allowed["isError"] and "ECHOED<hi> for s-slack" in allowed["content"][0]["text"]
    assert not (await call(bridge, "s-web", "echo"))["isError"]


async def test_a_tools_own_timeout_replaces_the_default(tmp_path: Path) -> None:
    release = asyncio.Event()

    async def slow(args: dict[str, Any], ctx: ToolCallContext) -> str:
        await release.wait()
        return "done"

    schema = {"type": "object"}
    quick = AgentToolSpec("quick", "times out soon", schema, slow, timeout=0.2)
    patient = AgentToolSpec("patient", "waits for the default", schema, slow)
    bridge = bridge_for(tmp_path, quick, patient, call_timeout=30.0)
    result = await asyncio.wait_for(call(bridge, "s-web", "quick"), 10)
    assert result["isError"] and "timed out after 0.2s" in result["content"][0]["text"]
    # the other tool keeps the bridge's default: still running after quick's limit passed
    task = asyncio.create_task(call(bridge, "s-web", "patient"))
    done, _ = await asyncio.wait({task}, timeout=0.5)
    assert not done
    release.set()
    result = await asyncio.wait_for(task, 10)
    assert not result["isError"] and result["content"][0]["text"] == "done"


async def test_a_longer_own_timeout_outlives_the_default(tmp_path: Path) -> None:
    async def takes_a_while(args: dict[str, Any], ctx: ToolCallContext) -> str:
        await asyncio.sleep(0.4)  # the work the tool simulates, longer than the default
        return "finished"

    spec = AgentToolSpec("long", "long", {"type": "object"}, takes_a_while, timeout=10.0)
    bridge = bridge_for(tmp_path, spec, call_timeout=0.1)
    result = await asyncio.wait_for(call(bridge, "s-web", "long"), 10)
    assert not result["isError"] and result["content"][0]["text"] == "finished"
