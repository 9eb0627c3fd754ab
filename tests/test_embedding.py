"""HotPlex embedded through the public Python API (``hotplex.open``) is the daemon's HotPlex:
the real Claude Code CLI against the fake Anthropic API, with the WAF on prompts and tool
calls, storage that survives a restart, and the agent tools offered to the agent."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import hotplex
from hotplex.config import Settings, load_settings
from hotplex.events import AgentEvent
from hotplex.plugins import HotplexPluginManager, make_plugin_manager
from hotplex.records import AgentToolSpec
from hotplex.testing.fake_anthropic import FakeAnthropic
from hotplex.testing.fakes import EchoTool
from hotplex.testing.turns import next_event

pytestmark = pytest.mark.real_cli
TURN = 30.0
KEY = "embedded"


class Tools:
    def __init__(self, echo: EchoTool) -> None:
        self.echo = echo

    @hotplex.hookimpl
    def hotplex_register_agent_tools(self) -> list[AgentToolSpec]:
        return [self.echo.spec()]


def settings_for(tmp_path: Path, claude: Path) -> Settings:
    raw = {
        "engine": {"data_dir": str(tmp_path / "data")},
        "provider": {"binary": str(claude)},
        "security": {"approval_timeout": "60s"},
    }
    return load_settings(None, text=yaml.safe_dump(raw), environ={}).settings


def plugins_with_tools() -> HotplexPluginManager:
    return make_plugin_manager(entry_points=False, environ={}, extra=[("tools", Tools(EchoTool()))])


def offered_tools(api: FakeAnthropic) -> set[str]:
    return {
        str(tool.get("name"))
        for request in api.requests
        for tool in (request.body or {}).get("tools") or []
    }


def user_texts_sent(api: FakeAnthropic) -> str:
    return json.dumps([request.messages for request in api.requests])


async def test_embedded_hotplex_has_the_daemons_safety_storage_and_tools(
    fake_api: FakeAnthropic, claude_binary: Path, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, claude_binary)
    async with hotplex.open(settings=settings, plugins=plugins_with_tools()) as hp:
        session_id = hp.session_id(KEY)

        # a prompt the WAF blocks is refused before any agent starts
        blocked = await (await hp.execute(KEY, "please run: rm -rf ~ now")).collect(TURN)
        assert [e.type for e in blocked] == ["error", "done"]
        assert blocked[0].data["code"] == "refused"
        assert "delete.home" in blocked[0].data["message"]
        assert fake_api.requests == [] and hp.engine.live_processes == 0

        # a prompt the WAF asks about reaches the caller as a permission_request (prompt)
        reply = await hp.execute(KEY, "append a line: echo hi >> ~/.bashrc")
        asked = await next_event(reply, "permission_request", TURN)
        assert asked.data["kind"] == "prompt" and asked.data["tool"] == "prompt"
        request = hp.approvals.get(asked.data["permission_id"])
        assert request is not None and request.kind == "prompt"
        assert "persist.shell_rc" in (asked.data.get("reason") or "")
        assert fake_api.requests == []  # nothing went to the agent while it waits
        await hp.decide(asked.data["permission_id"], "allow")
        answered = await reply.collect(TURN)
        assert answered[-1].type == "done" and answered[-1].data["status"] == "ok"
        assert "echo hi >> ~/.bashrc" in user_texts_sent(fake_api)

        # the agent tools are offered to the agent
        assert "mcp__hotplex__echo" in offered_tools(fake_api)

        # a tool call the WAF blocks (the agent reads an SSH private key; the prompt
        # itself passes the prompt WAF) is denied without asking anyone
        reply = await hp.execute(KEY, "READ: ~/.ssh/id_rsa")
        events: list[AgentEvent] = []
        async with asyncio.timeout(TURN):
            async for event in reply:
                assert event.type != "permission_request", f"a person was asked: {event.data}"
                events.append(event)
        tool_use = next(e for e in events if e.type == "tool_use")
        assert tool_use.data["name"] == "Read"
        result = next(e for e in events if e.type == "tool_result")
        assert result.data["is_error"] and "ssh" in result.data["output"].lower()
        assert hp.approvals.pending() == []
        stored = await hp.history(session_id)

    assert stored, "nothing was stored"
    assert {"tool_use", "tool_result", "done"} <= {e.type for e in stored}
    # a second open on the same data directory reads the same events back
    async with hotplex.open(settings=settings, plugins=plugins_with_tools()) as again:
        after_restart = await again.history(session_id)
    assert _keys(after_restart)[: len(stored)] == _keys(stored)


def _keys(events: list[AgentEvent]) -> list[tuple[Any, ...]]:
    return [(e.seq, e.type, e.turn_id) for e in events]
