"""The ``--mcp-config`` text for the ``hotplex`` server, merged with the user's own."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hotplex.errors import ConfigError

__all__ = ["SERVER_NAME", "entry_socket", "merge_mcp_config", "server_entry", "shared_server_entry"]

SERVER_NAME = "hotplex"


def server_entry(socket: Path | str, session_id: str) -> dict[str, Any]:
    """The stdio MCP server entry the CLI starts for one session."""
    return {
        "type": "stdio",
        "command": sys.executable,
        "args": [
            "-m",
            "hotplex.agent_tools.stdio",
            "--socket",
            str(socket),
            "--session",
            session_id,
        ],
    }


def shared_server_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A session's :func:`server_entry` turned into one for a server process that serves
    every session of its working directory (OpenCode's): no session id, ``--shared``; the
    bridge matches its calls to sessions by their grants (:mod:`.grants`)."""
    args = [str(a) for a in entry.get("args") or ()]
    if "--session" in args:
        at = args.index("--session")
        del args[at : at + 2]
    return {**entry, "args": [*args, "--shared"]}


def entry_socket(entry: Mapping[str, Any]) -> str | None:
    """The bridge socket a :func:`server_entry` talks to."""
    args = [str(a) for a in entry.get("args") or ()]
    if "--socket" in args and args.index("--socket") + 1 < len(args):
        return args[args.index("--socket") + 1]
    return None


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
