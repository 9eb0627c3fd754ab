"""One policy name for a HotPlex agent tool, whichever provider calls it: the names, the
session grants, an unattended session's allow_tools and Claude Code's allow rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotplex.config import AllowTools, load_settings
from hotplex.engine.engine import Engine
from hotplex.engine.policy import SessionGrants, ToolCall
from hotplex.providers.claude_code import ClaudeCodeProvider
from hotplex.testing.fakes import FakeProvider
from hotplex.testing.fakes import ToolCall as FakeCall
from hotplex.tool_names import canonical_tool_name, is_agent_tool, opencode_tool_name
from hotplex.types import ToolRequest


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("mcp__hotplex__echo", "mcp__hotplex__echo"),
        ("hotplex_echo", "mcp__hotplex__echo"),
        (opencode_tool_name("hotplex", "send.file"), "mcp__hotplex__send_file"),
        ("mcp__hotplex__send.file", "mcp__hotplex__send_file"),
        ("Bash", "Bash"),
        ("mcp__other__echo", "mcp__other__echo"),
        ("hotplex_", "hotplex_"),
    ],
)
def test_canonical_names(name: str, canonical: str) -> None:
    assert canonical_tool_name(name) == canonical
    assert is_agent_tool(name) is canonical.startswith("mcp__hotplex__")


def call(tool: str, text: str = "hi") -> ToolCall:
    request = ToolRequest(stage="pre", tool=tool, input={"text": text})
    return ToolCall("s1", None, Path("/w"), request)


@pytest.mark.parametrize(
    ("granted", "called"),
    [("mcp__hotplex__echo", "hotplex_echo"), ("hotplex_echo", "mcp__hotplex__echo")],
)
async def test_a_session_grant_holds_in_both_spellings(granted: str, called: str) -> None:
    grants = SessionGrants()
    grants.grant("s1", call(granted).request)
    assert call(called).tool_name == "mcp__hotplex__echo"
    verdict = await grants.check(call(called))
    assert verdict is not None and verdict.action == "allow"
    assert await grants.check(call(called, text="other")) is None  # the input still counts
    assert await grants.check(call("mcp__hotplex__other")) is None


@pytest.mark.parametrize(
    ("listed", "called"),
    [("hotplex_echo", "mcp__hotplex__echo"), ("mcp__hotplex__echo", "hotplex_echo")],
)
async def test_unattended_allow_tools_in_either_spelling(
    tmp_path: Path, listed: str, called: str
) -> None:
    provider = FakeProvider(
        [[FakeCall(called, {"text": "hi"}), FakeCall("mcp__hotplex__other", {})]]
    )
    text = f"engine:\n  data_dir: {tmp_path / 'data'}\n"
    settings = load_settings(None, text=text, environ={}).settings
    async with Engine(settings, provider) as engine:
        policy = AllowTools(allow_tools=(listed,))
        events = await (await engine.execute("cron", "x", policy=policy)).collect(5)
    results = [e.data["is_error"] for e in events if e.type == "tool_result"]
    assert results == [False, True]


def test_claude_allow_rules_take_the_opencode_spelling() -> None:
    text = (
        "provider:\n  allowed_tools: [hotplex_echo, Bash, 'mcp__hotplex__*']\n"
        "  disallowed_tools: [hotplex_other]\n"
    )
    settings = load_settings(None, text=text, environ={}).settings
    args = ClaudeCodeProvider(settings.provider, binary=Path("/bin/claude")).base_args()
    allowed = [args[i + 1] for i, a in enumerate(args) if a == "--allowedTools"]
    assert allowed == ["mcp__hotplex__echo", "Bash", "mcp__hotplex__*"]
    assert args[args.index("--disallowedTools") + 1] == "mcp__hotplex__other"
