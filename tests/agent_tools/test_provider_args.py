"""The provider gives the CLI one --mcp-config: the user's servers plus ``hotplex``."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from hotplex.agent_tools import server_entry
from hotplex.config import load_settings
from hotplex.providers.claude_code import ClaudeCodeProvider
from hotplex.types import AgentStartSpec


def spec(tmp_path: Path, servers: dict[str, dict[str, object]]) -> AgentStartSpec:
    return AgentStartSpec(
        session_id="s1",
        provider_session_id="p1",
        resume=False,
        work_dir=tmp_path / "w",
        state_dir=tmp_path / "state",
        env={},
        mcp_servers=servers,
    )


def provider(**settings: object) -> ClaudeCodeProvider:
    raw = {"provider": settings}
    loaded = load_settings(None, text=yaml.safe_dump(raw), environ={}).settings
    return ClaudeCodeProvider(loaded.provider, binary=Path("/usr/bin/claude"))


def test_one_merged_mcp_config(tmp_path: Path) -> None:
    user = json.dumps({"mcpServers": {"mine": {"type": "stdio", "command": "x"}}})
    ours = {"hotplex": server_entry("/run/a.sock", "s1")}
    argv = provider(mcp_config=user).argv(spec(tmp_path, ours))
    assert argv.count("--mcp-config") == 1
    config = json.loads(argv[argv.index("--mcp-config") + 1])
    assert set(config["mcpServers"]) == {"mine", "hotplex"}
    assert argv[-2:] == ["--session-id", "p1"]


def test_no_servers_leaves_argv_alone(tmp_path: Path) -> None:
    p = provider(mcp_config='{"mcpServers": {}}')
    assert p.argv(spec(tmp_path, {})) == [*p.base_args(), "--session-id", "p1"]
