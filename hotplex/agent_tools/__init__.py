"""Agent tools: plugin-registered tools the agent calls on the ``hotplex`` MCP server.

The CLI runs ``python -m hotplex.agent_tools.stdio`` as a stdio MCP server (given to it with
``--mcp-config``); that process forwards ``tools/list`` and ``tools/call`` over a unix socket
to the :class:`AgentToolBridge` in the daemon, which runs the registered handlers. Every call
passes the engine's gate first (the provider's PreToolUse hook sees ``mcp__hotplex__<name>``;
OpenCode, which shares one server between the sessions of a directory, asks for
``hotplex_<name>`` and the bridge runs the call only against the grant of that approval).
"""

from __future__ import annotations

from hotplex.agent_tools.bridge import (
    CALL_TIMEOUT,
    AgentToolBridge,
    RpcError,
    SessionResolver,
    active_grants,
    active_socket,
    mcp_servers,
    socket_path,
)
from hotplex.agent_tools.config import (
    SERVER_NAME,
    entry_socket,
    merge_mcp_config,
    server_entry,
    shared_server_entry,
)
from hotplex.agent_tools.grants import CallGrants, Grant, opencode_tool_name
from hotplex.agent_tools.sdk import SdkServer, sdk_server_entry
from hotplex.context import ServiceKey

#: The running bridge, in ``PluginContext.services`` (set by core's engine resource when a
#: plugin registers agent tools).
AGENT_TOOLS = ServiceKey("agent_tools", AgentToolBridge)

__all__ = [
    "AGENT_TOOLS",
    "CALL_TIMEOUT",
    "SERVER_NAME",
    "AgentToolBridge",
    "CallGrants",
    "Grant",
    "RpcError",
    "SdkServer",
    "SessionResolver",
    "active_grants",
    "active_socket",
    "entry_socket",
    "mcp_servers",
    "merge_mcp_config",
    "opencode_tool_name",
    "sdk_server_entry",
    "server_entry",
    "shared_server_entry",
    "socket_path",
]
