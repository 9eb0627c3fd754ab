"""The ``hotplex`` MCP server served in-process, over the agent CLI's own control channel.

Claude Code takes an MCP server of ``"type": "sdk"`` in ``--mcp-config`` (what the Agent SDKs
use for in-process tools): it starts no process for it and sends each MCP JSON-RPC message
to the host instead, as a ``control_request``::

    {"type": "control_request", "request_id": "...", "request": {"subtype": "mcp_message",
     "server_name": "hotplex", "message": {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
     "params": {"name": "echo", "arguments": {...}, "_meta": {"claudecode/toolUseId": "..."}}}}}

and the host answers ``{"mcp_response": <JSON-RPC reply>}`` in the ``control_response``
(checked with the pinned CLI 2.1.197: ``initialize``, ``notifications/initialized`` and
``tools/list`` arrive while the CLI initializes, before its ``system/init`` line).

One :class:`SdkServer` per agent process: it knows the session the agent was started under,
so the session of a call is never the caller's word. Only the agent's own control channel
(its stdout pipe, read by the daemon) reaches it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hotplex.agent_tools.config import SERVER_NAME
from hotplex.agent_tools.rpc import RpcError

if TYPE_CHECKING:
    from hotplex.agent_tools.bridge import AgentToolBridge

__all__ = ["PROTOCOL_VERSION", "SdkServer", "sdk_server_entry"]

PROTOCOL_VERSION = "2025-06-18"
SERVER_INFO = {"name": SERVER_NAME, "version": "1"}


def sdk_server_entry() -> dict[str, Any]:
    """The ``--mcp-config`` entry of the in-process ``hotplex`` server."""
    return {"type": "sdk", "name": SERVER_NAME}


class SdkServer:
    """Answers the ``mcp_message`` requests of one agent process with ``bridge``'s tools,
    run for ``session_id`` (the id the agent was started under)."""

    name = SERVER_NAME

    def __init__(self, bridge: AgentToolBridge, session_id: str) -> None:
        self.bridge = bridge
        self.session_id = session_id

    async def handle(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON-RPC reply to ``message`` (for a notification, an empty result, which the
        CLI ignores)."""
        request_id = message.get("id")
        method = message.get("method")
        try:
            result = await self._result(method, message.get("params"))
        except RpcError as exc:
            error = {"code": exc.code, "message": str(exc)}
            return {"jsonrpc": "2.0", "id": request_id, "error": error}
        reply: dict[str, Any] = {"jsonrpc": "2.0", "result": result}
        if "id" in message:
            reply["id"] = request_id
        return reply

    async def _result(self, method: Any, params: Any) -> dict[str, Any]:
        params = params if isinstance(params, Mapping) else {}
        if method == "initialize":
            version = params.get("protocolVersion")
            return {
                "protocolVersion": version if isinstance(version, str) else PROTOCOL_VERSION,
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": SERVER_INFO,
            }
        if method == "ping" or (isinstance(method, str) and method.startswith("notifications/")):
            return {}
        if method == "tools/list":
            return {"tools": self.bridge.catalog()}
        if method == "tools/call":
            return await self.bridge.call(params, session=self.session_id)
        raise RpcError(-32601, f"method not found: {method}")
