"""The Claude Code provider gives the CLI one --mcp-config: the user's servers plus the
in-process ``hotplex`` server when there are agent tools; otherwise the user's as given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import yaml

from hotplex.agent_tools import AgentToolBridge
from hotplex.config import load_settings
from hotplex.context import PluginContext
from hotplex.providers.claude_code import ClaudeCodeProvider
from hotplex.testing.fakes import EchoTool
from hotplex.types import AgentStartSpec


def spec(tmp_path: Path) -> AgentStartSpec:
    return AgentStartSpec(
        session_id="s1",
        provider_session_id="p1",
        resume=False,
        work_dir=tmp_path / "w",
        state_dir=tmp_path / "state",
        env={},
    )


def provider(bridge: AgentToolBridge | None = None, **settings: object) -> ClaudeCodeProvider:
    raw = {"provider": settings}
    loaded = load_settings(None, text=yaml.safe_dump(raw), environ={}).settings
    return ClaudeCodeProvider(loaded.provider, binary=Path("/usr/bin/claude"), agent_tools=bridge)


def test_one_merged_mcp_config(tmp_path: Path) -> None:
    user = json.dumps({"mcpServers": {"mine": {"type": "stdio", "command": "x"}}})
    context = cast(PluginContext, object())
    bridge = AgentToolBridge({"echo": EchoTool().spec()}, context, data_dir=tmp_path)
    argv = provider(bridge, mcp_config=user).argv(spec(tmp_path))
    assert argv.count("--mcp-config") == 1
    config = json.loads(argv[argv.index("--mcp-config") + 1])
    assert config["mcpServers"] == {
        "mine": {"type": "stdio", "command": "x"},
        "hotplex": {"type": "sdk", "name": "hotplex"},
    }
    assert argv[-2:] == ["--session-id", "p1"]


def test_no_tools_leaves_argv_alone(tmp_path: Path) -> None:
    p = provider(mcp_config='{"mcpServers": {}}')
    assert p.argv(spec(tmp_path)) == [*p.base_args(), "--session-id", "p1"]
