"""The ``--mcp-config`` text for the ``hotplex`` server, merged with the user's own."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hotplex.errors import ConfigError

__all__ = ["SERVER_NAME", "STDIO_SCRIPT", "merge_mcp_config", "shared_server_entry"]

SERVER_NAME = "hotplex"
#: The stdio MCP server (:mod:`hotplex.agent_tools.stdio`), run as a script.
STDIO_SCRIPT = Path(__file__).resolve().with_name("stdio.py")


def shared_server_entry(socket: Path | str) -> dict[str, Any]:
    """The stdio MCP server entry for an agent server that runs one ``hotplex`` server for
    all the sessions of its working directory (OpenCode): its calls carry that directory,
    and the bridge on ``socket`` runs them only against a grant (:mod:`.grants`).

    The server is run as a script file in isolated mode (``python -I .../stdio.py``): it
    imports only the standard library, not the ``hotplex`` package."""
    return {
        "type": "stdio",
        "command": sys.executable,
        "args": ["-I", str(STDIO_SCRIPT), "--socket", str(socket)],
    }


def _user_servers(user: str | None) -> dict[str, Any]:
    if not user or not user.strip():
        return {}
    text = user
    if not user.lstrip().startswith("{"):
        path = Path(user).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"provider.mcp_config: cannot read {path}: {exc}", path="provider.mcp_config"
            ) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"provider.mcp_config is not valid JSON: {exc}", path="provider.mcp_config"
        ) from exc
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise ConfigError(
            "provider.mcp_config needs an object with mcpServers", path="provider.mcp_config"
        )
    return dict(servers)


def merge_mcp_config(user: str | None, servers: Mapping[str, Mapping[str, Any]]) -> str:
    """One JSON ``--mcp-config`` value: the user's servers (JSON text or a file path) plus
    ``servers``; ours win on a name clash (``hotplex`` is reserved)."""
    merged = _user_servers(user)
    merged.update({name: dict(entry) for name, entry in servers.items()})
    return json.dumps({"mcpServers": merged}, separators=(",", ":"))
