"""The environment and ``OPENCODE_CONFIG_CONTENT`` the shared ``opencode serve`` starts with:
isolated state directories, HotPlex's permission rules, the model and its API endpoint."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hotplex.agent_tools.bridge import CALL_TIMEOUT
from hotplex.agent_tools.config import SERVER_NAME
from hotplex.config import ProviderSettings
from hotplex.providers.opencode_events import CONFIG_PERMISSION
from hotplex.providers.opencode_http import USERNAME

__all__ = ["DEFAULT_ENV", "MCP_TIMEOUT", "link_auth", "merge", "opencode_config", "server_env"]

#: OpenCode's own limit on an MCP request (its default is 5 s): past the bridge's, so the
#: agent sees the bridge's message.
MCP_TIMEOUT = CALL_TIMEOUT + 15.0

#: Set unless provider.env says otherwise (protocols.md §6.1; OPENCODE_PURE skips installing
#: external plugins into the config dir).
DEFAULT_ENV = {
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
    "OPENCODE_DISABLE_SHARE": "1",
    "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "OPENCODE_DISABLE_CLAUDE_CODE": "1",
    "OPENCODE_PURE": "1",
}


def merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` over ``base``, objects merged key by key."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def opencode_config(
    settings: ProviderSettings,
    env: Mapping[str, str],
    mcp_servers: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """What goes into ``OPENCODE_CONFIG_CONTENT`` (merged over any given in env): the model,
    its endpoint, and HotPlex's ``hotplex`` MCP server when the agent gets one."""
    config: dict[str, Any] = {}
    entry = (mcp_servers or {}).get(SERVER_NAME)
    if entry is not None:
        # one process per directory (OpenCode's MCP clients live in its per-directory
        # instance, started in that directory): the bridge attributes calls by their grants
        config["mcp"] = {
            SERVER_NAME: {
                "type": "local",
                "command": [str(entry["command"]), *entry["args"]],
                "enabled": True,
                "timeout": int(MCP_TIMEOUT * 1000),
            }
        }
    base_url = env.get("ANTHROPIC_BASE_URL")
    if base_url:
        base = base_url.rstrip("/")
        options = {"baseURL": base if base.endswith("/v1") else base + "/v1"}
        if env.get("ANTHROPIC_API_KEY"):
            options["apiKey"] = env["ANTHROPIC_API_KEY"]
        config["provider"] = {"anthropic": {"options": options}}
    model = settings.model
    if model:
        config["model"] = model if "/" in model or not base_url else f"anthropic/{model}"
    return config


def server_env(
    state_root: Path, config: Mapping[str, Any], env: Mapping[str, str], password: str
) -> dict[str, str]:
    """The server's environment: ``env`` plus isolated state directories, credentials, the
    permission rules, and ``config`` merged over any ``OPENCODE_CONFIG_CONTENT`` in ``env``."""
    out = dict(env)
    for name in ("data", "config", "cache", "state"):
        out[f"XDG_{name.upper()}_HOME"] = str(state_root / name)
    for key, value in DEFAULT_ENV.items():
        out.setdefault(key, value)
    out["OPENCODE_SERVER_USERNAME"] = USERNAME
    out["OPENCODE_SERVER_PASSWORD"] = password
    try:
        theirs = json.loads(env.get("OPENCODE_PERMISSION") or "{}")
    except ValueError:
        theirs = {}
    theirs = theirs if isinstance(theirs, dict) else {}
    permission = {k: v for k, v in theirs.items() if k not in CONFIG_PERMISSION}
    out["OPENCODE_PERMISSION"] = json.dumps({**permission, **CONFIG_PERMISSION})
    if config:
        try:
            given = json.loads(env.get("OPENCODE_CONFIG_CONTENT") or "{}")
        except ValueError:
            given = {}
        merged = merge(given if isinstance(given, dict) else {}, config)
        out["OPENCODE_CONFIG_CONTENT"] = json.dumps(merged)
    return out


def link_auth(state_root: Path, env: Mapping[str, str]) -> None:
    """``opencode auth login`` keeps credentials in the user's data dir; link them into the
    isolated one."""
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    source = Path(base) / "opencode" / "auth.json"
    target = state_root / "data" / "opencode" / "auth.json"
    if source.is_file() and not target.exists() and source.resolve() != target.resolve():
        with contextlib.suppress(OSError):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source)
