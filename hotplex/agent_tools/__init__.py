"""Agent tools: plugin-registered tools the agent calls on the ``hotplex`` MCP server.

The CLI runs ``python -m hotplex.agent_tools.stdio`` as a stdio MCP server (given to it with
``--mcp-config``); that process forwards ``tools/list`` and ``tools/call`` over a unix socket
to the :class:`AgentToolBridge` in the daemon, which runs the registered handlers. Every call
passes the engine's gate first (the provider's PreToolUse hook sees ``mcp__hotplex__<name>``).
"""

from __future__ import annotations

from hotplex.agent_tools.bridge import (
    CALL_TIMEOUT,
    AgentToolBridge,
    SessionResolver,
    active_socket,
    mcp_servers,
    socket_path,
)
from hotplex.agent_tools.config import SERVER_NAME, merge_mcp_config, server_entry

__all__ = [
    "CALL_TIMEOUT",
    "SERVER_NAME",
    "AgentToolBridge",
    "SessionResolver",
    "active_socket",
    "mcp_servers",
    "merge_mcp_config",
    "server_entry",
    "socket_path",
]
