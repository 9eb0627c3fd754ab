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
so the session of a call is never the caller's word. And a call runs only as the gate let it
through: the provider hands over each ``mcp__hotplex__*`` tool use the gate did not deny
(:meth:`SdkServer.approve`, keyed by its ``tool_use_id``), and a ``tools/call`` must name one
of those (``_meta["claudecode/toolUseId"]``) with the same tool and arguments; it uses it
up. The agent's stdout pipe is the channel, and another process of the daemon's user can
open it (``/proc/<pid>/fd/1``) and write a line into it: such a forged call names no
approved tool use, and is refused and audited.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hotplex.agent_tools.config import SERVER_NAME
from hotplex.agent_tools.rpc import RpcError, error_result
from hotplex.tool_names import canonical_tool_name, claude_tool_name, is_agent_tool

if TYPE_CHECKING:
    from hotplex.agent_tools.bridge import AgentToolBridge

__all__ = ["MAX_APPROVED", "PROTOCOL_VERSION", "TOOL_USE_META", "SdkServer", "sdk_server_entry"]

PROTOCOL_VERSION = "2025-06-18"
SERVER_INFO = {"name": SERVER_NAME, "version": "1"}
#: Where Claude Code puts the tool use's id in a ``tools/call`` (2.1.197).
TOOL_USE_META = "claudecode/toolUseId"
#: Approved tool uses kept per agent; the oldest are dropped past this.
MAX_APPROVED = 256


def _canonical(arguments: Any) -> str:
    return json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=str)


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
        self._approved: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def approve(self, tool_use_id: str | None, tool: str, arguments: Mapping[str, Any]) -> None:
        """The gate let ``tool`` (the CLI's name) run with ``arguments``: one call of it
        under ``tool_use_id`` may run. Other tools than ours are ignored."""
        if not tool_use_id or not is_agent_tool(tool):
            return
        self._approved[tool_use_id] = (canonical_tool_name(tool), _canonical(dict(arguments)))
        self._approved.move_to_end(tool_use_id)
        while len(self._approved) > MAX_APPROVED:
            self._approved.popitem(last=False)

    def withdraw(self, tool_use_id: str | None) -> None:
        """The gate denied the tool use after all (a person said no)."""
        if tool_use_id:
            self._approved.pop(tool_use_id, None)

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
            return await self._call(params)
        raise RpcError(-32601, f"method not found: {method}")

    async def _call(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = params.get("name")
        arguments = params.get("arguments") or {}
        meta = params.get("_meta")
        tool_use_id = meta.get(TOOL_USE_META) if isinstance(meta, Mapping) else None
        approved = self._approved.pop(tool_use_id, None) if isinstance(tool_use_id, str) else None
        called = canonical_tool_name(claude_tool_name(str(name)))
        if approved is None or approved != (called, _canonical(arguments)):
            reason = "no approved tool use" if approved is None else "not the approved call"
            await self.bridge.refused(
                str(name), reason, session=self.session_id, tool_use_id=tool_use_id
            )
            return error_result(f"tool {name} was not approved for this call")
        return await self.bridge.call(params, session=self.session_id)
