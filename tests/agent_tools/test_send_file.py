"""The agent tool ``send_file``: a file of the session's work directory reaches the chat
adapter's ``upload_file`` for the session's conversation, through the delivery router;
anything outside the work directory is refused."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hotplex.agent_tools import AGENT_TOOLS
from hotplex.chat.scope import conversation_key
from hotplex.testing.fake_anthropic import FakeAnthropic
from hotplex.testing.running import RunningHotPlex
from hotplex.types import ChatCapabilities

FILES = ChatCapabilities(files=True)


async def conversation(hp: RunningHotPlex) -> tuple[str, str, Path]:
    """A DM conversation whose session has run one turn: its session id, address and work
    directory (created)."""
    incoming = hp.adapter.message("hi", direct=True)
    key = conversation_key(incoming, "thread")
    turn = await hp.engine.execute(key, "hi", address=incoming.address, user=incoming.user)
    await turn.collect(5)
    session = hp.engine.get(hp.engine.session_id(key))
    assert session is not None
    session.work_dir.mkdir(parents=True, exist_ok=True)
    return session.session_id, incoming.address, session.work_dir


async def call(hp: RunningHotPlex, session_id: str, **arguments: Any) -> dict[str, Any]:
    bridge = hp.runtime.ctx.services.get(AGENT_TOOLS)
    return await bridge.call({"name": "send_file", "arguments": arguments}, session=session_id)


def uploads(hp: RunningHotPlex) -> list[tuple[Any, ...]]:
    return [c for c in hp.ops.calls if c[0] == "upload_file"]


async def test_send_file_reaches_the_adapters_upload_with_the_conversations_address(
    running_hotplex: Callable[..., Awaitable[RunningHotPlex]],
) -> None:
    hp = await running_hotplex(capabilities=FILES)
    session_id, address, work = await conversation(hp)
    (work / "out").mkdir()
    (work / "out" / "report.txt").write_text("numbers")
    result = await call(hp, session_id, path="out/report.txt", title="Weekly <!here>")
    assert result["isError"] is False, result
    assert result["content"][0]["text"] == "Sent out/report.txt to the conversation."
    assert [c[1:4] for c in uploads(hp)] == [
        (address, str((work / "out" / "report.txt").resolve()), "Weekly <!here>")
    ]


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("../secret.txt", "outside the working directory"),
        ("/etc/hostname", "outside the working directory"),
        ("link.txt", "outside the working directory"),  # a symlink to a file outside
        ("sub", "not a regular file"),
        (".", "outside the working directory"),
        ("missing.txt", "no such file"),
    ],
)
async def test_a_path_outside_the_work_directory_is_refused(
    running_hotplex: Callable[..., Awaitable[RunningHotPlex]], path: str, says: str
) -> None:
    hp = await running_hotplex(capabilities=FILES)
    session_id, _, work = await conversation(hp)
    secret = work.parent / "secret.txt"
    secret.write_text("not yours")
    (work / "link.txt").symlink_to(secret)
    (work / "sub").mkdir()
    result = await call(hp, session_id, path=path)
    assert result["isError"] is True
    assert says in result["content"][0]["text"]
    assert uploads(hp) == []


async def test_a_session_without_a_conversation_or_a_platform_without_files(
    running_hotplex: Callable[..., Awaitable[RunningHotPlex]],
) -> None:
    hp = await running_hotplex()  # the fake platform declares no files
    session_id, _, work = await conversation(hp)
    (work / "a.txt").write_text("a")
    result = await call(hp, session_id, path="a.txt")
    assert result["isError"] is True and "takes no files" in result["content"][0]["text"]
    await (await hp.engine.execute("local", "hi")).collect(5)  # no address
    result = await call(hp, hp.engine.session_id("local"), path="a.txt")
    assert result["isError"] is True
    assert "no conversation" in result["content"][0]["text"]
    assert uploads(hp) == []


@pytest.mark.real_cli
@pytest.mark.parametrize("decision", ["allow", "deny"])
async def test_the_real_cli_sends_a_file_through_the_approval(
    running_hotplex: Callable[..., Awaitable[RunningHotPlex]],
    claude_binary: Path,
    fake_api: FakeAnthropic,
    decision: str,
) -> None:
    hp = await running_hotplex(
        capabilities=FILES,
        config={"provider": {"type": "claude-code", "binary": str(claude_binary)}},
    )
    incoming = hp.adapter.message("send it", direct=True)
    key = conversation_key(incoming, "thread")
    work = await hp.engine.work_dir(key, address=incoming.address, user=incoming.user)
    work.mkdir(parents=True, exist_ok=True)
    (work / "chart.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    arguments = json.dumps({"path": "chart.png", "title": "Chart"})
    turn = await hp.engine.execute(
        key, f"MCP: mcp__hotplex__send_file {arguments}", address=incoming.address
    )
    asked = None
    async with asyncio.timeout(60):
        async for event in turn:
            if event.type == "permission_request":
                asked = event.data
                assert event.data["tool"] in ("mcp__hotplex__send_file", "hotplex_send_file")
                await hp.engine.approvals.decide(
                    event.data["permission_id"], decision, by="fake:U1", scope="once"
                )
            if event.type == "done":
                break
    assert asked is not None, "the call was not put to a person"
    if decision == "allow":
        assert [c[1:4] for c in uploads(hp)] == [
            (incoming.address, str((work / "chart.png").resolve()), "Chart")
        ]
    else:
        assert uploads(hp) == []
