"""Agent tools: plugin-registered tools the agent calls on the ``hotplex`` MCP server.

One :class:`AgentToolBridge` (the ``AGENT_TOOLS`` service) runs the handlers; the providers
serve it. Claude Code agents get it in-process over their control channel
(:mod:`.sdk`); OpenCode, which runs one MCP server per work directory, gets a stdio server
(:mod:`.stdio`) that forwards to the bridge's unix socket (:mod:`.shared`), where a call runs
only against the grant its approval left (:mod:`.grants`). Every call passes the engine's
gate first (``mcp__hotplex__<name>`` in Claude Code, ``hotplex_<name>`` in OpenCode; policies
compare both as one name, :func:`canonical_tool_name`).
"""

from __future__ import annotations

from hotplex.agent_tools.bridge import CALL_TIMEOUT, AgentToolBridge, SessionResolver
from hotplex.agent_tools.config import (
    SERVER_NAME,
    STDIO_SCRIPT,
    merge_mcp_config,
    shared_server_entry,
)
from hotplex.agent_tools.grants import CallGrants, Grant
from hotplex.agent_tools.rpc import RpcError
from hotplex.agent_tools.sdk import SdkServer, sdk_server_entry
from hotplex.agent_tools.shared import SharedSocket, socket_path
from hotplex.context import ServiceKey
from hotplex.tool_names import canonical_tool_name, claude_tool_name, opencode_tool_name

#: The agent-tool bridge, in ``PluginContext.services`` (set by core's engine resource when
#: a plugin registers agent tools, before the provider is built).
AGENT_TOOLS = ServiceKey("agent_tools", AgentToolBridge)

__all__ = [
    "AGENT_TOOLS",
    "CALL_TIMEOUT",
    "SERVER_NAME",
    "STDIO_SCRIPT",
    "AgentToolBridge",
    "CallGrants",
    "Grant",
    "RpcError",
    "SdkServer",
    "SessionResolver",
    "SharedSocket",
    "canonical_tool_name",
    "claude_tool_name",
    "merge_mcp_config",
    "opencode_tool_name",
    "sdk_server_entry",
    "shared_server_entry",
    "socket_path",
]
