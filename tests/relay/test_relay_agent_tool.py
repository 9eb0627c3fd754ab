"""The agent tool ``relay`` with the real Claude Code CLI against the fake Anthropic API:
an agent on A asks B (a real daemon) and gets B's answer into its turn; and an A -> B -> A
cycle set up on purpose (B's agent asks A back) stops at the loop guard with an audit
entry on B, and A's agent is told why."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import hotplex_relay.plugin as relay_plugin
import pytest
from relay_kit import Bot, audit, running, until, write_config

from hotplex.testing.fake_anthropic import FakeAnthropic
from hotplex.testing.running import RunningHotPlex

TOOL = "mcp__hotplex__relay"


async def agent_on_a(
    running_hotplex: Callable[..., Awaitable[RunningHotPlex]], claude: Path, b: Bot
) -> RunningHotPlex:
    return await running_hotplex(
        plugins=[("relay", relay_plugin)],
        config={
            "provider": {"type": "claude-code", "binary": str(claude), "allowed_tools": [TOOL]},
            "plugins": {
                "relay": {
                    "name": "a",
                    "peers": [{"name": "b", "url": b.relay_url, "secret": "secret-a-b-0123456789"}],
                }
            },
        },
    )


async def ask_through_the_tool(hp: RunningHotPlex, prompt: str) -> str:
    arguments = json.dumps({"peer": "b", "prompt": prompt})
    message = hp.adapter.message("ask b", direct=True)
    turn = await hp.engine.execute(
        "fake:dm", f"MCP: {TOOL} {arguments}", address=message.address, user=message.user
    )
    events = await turn.collect(90)
    assert events[-1].type == "done" and events[-1].data["status"] == "ok", events[-3:]
    return "".join(str(e.data["text"]) for e in events if e.type == "text")


@pytest.mark.real_cli
@pytest.mark.timeout(180)
async def test_an_agent_asks_b_with_the_relay_tool_and_a_cycle_stops_at_the_guard(
    tmp_path: Path,
    running_hotplex: Callable[..., Awaitable[RunningHotPlex]],
    claude_binary: Path,
    fake_api: FakeAnthropic,
) -> None:
    b = Bot("b", tmp_path / "b")
    # b's agent may call relay unattended (its policy for a), so it can try to ask a back
    policy: Any = {"allow_tools": [TOOL]}
    config_b = write_config(
        b, {"a": "http://127.0.0.1:9/relay/v1"}, binary=claude_binary, policy=policy
    )
    async with running(b, config_b):
        hp = await agent_on_a(running_hotplex, claude_binary, b)
        text = await ask_through_the_tool(hp, "hello b")
        assert "tool said: echo: hello b" in text, text

        back = json.dumps({"peer": "a", "prompt": "and back to a"})
        text = await ask_through_the_tool(hp, f"MCP: {TOOL} {back}")
        assert "loop: a is already in the chain (a -> b -> a)" in text, text

        async def dropped() -> list[dict[str, Any]]:
            return await audit(b, "relay.dropped")

        (entry,) = await until(dropped, 10, "the relay.dropped audit entry on b")
        assert entry["data"]["side"] == "sender" and entry["data"]["to"] == "a"
        assert [h["peer"] for h in entry["data"]["chain"]] == ["a", "b"]


@pytest.mark.real_cli
@pytest.mark.timeout(180)
async def test_an_opencode_agent_asks_b_with_the_relay_tool(
    tmp_path: Path,
    running_hotplex: Callable[..., Awaitable[RunningHotPlex]],
    fake_api: FakeAnthropic,
) -> None:
    from hotplex.testing.real_cli import require_cli

    opencode = require_cli("opencode")
    b = Bot("b", tmp_path / "b")
    async with running(b, write_config(b, {"a": "http://127.0.0.1:9/relay/v1"})):
        hp = await running_hotplex(
            plugins=[("relay", relay_plugin)],
            config={
                "provider": {
                    "type": "opencode",
                    "binary": str(opencode),
                    "allowed_tools": ["hotplex_relay"],
                    "env": {"ANTHROPIC_BASE_URL": fake_api.base_url, "ANTHROPIC_API_KEY": "sk-t"},
                },
                "plugins": {
                    "relay": {
                        "name": "a",
                        "peers": [
                            {"name": "b", "url": b.relay_url, "secret": "secret-a-b-0123456789"}
                        ],
                    }
                },
            },
        )
        arguments = json.dumps({"peer": "b", "prompt": "hello from opencode"})
        message = hp.adapter.message("ask b", direct=True)
        turn = await hp.engine.execute(
            "fake:oc", f"MCP: hotplex_relay {arguments}", address=message.address
        )
        events = await turn.collect(120)
        text = "".join(str(e.data["text"]) for e in events if e.type == "text")
        assert "tool said: echo: hello from opencode" in text, events[-5:]
