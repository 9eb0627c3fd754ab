"""The agent-tool bridge: the one service that runs the registered agent tools.

Core's engine resource builds it once (when a plugin registers tools) and hands it to the
provider, which serves the tools to its agents:

- Claude Code in-process, one :class:`~hotplex.agent_tools.sdk.SdkServer` per agent over
  the CLI's control channel; the session is the agent's own.
- OpenCode through a stdio MCP server per work directory that reaches the bridge over a
  unix socket (:mod:`.shared`, opened on first use); such a call runs only against the
  grant (:mod:`.grants`) its approval left, which names its session.

An unknown tool is a JSON-RPC error; a handler that raises or times out gives a result with
``isError: true`` (MCP reports tool failures that way, and the agent sees the message).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotplex.agent_tools.config import SERVER_NAME, shared_server_entry
from hotplex.agent_tools.grants import CallGrants
from hotplex.agent_tools.rpc import RpcError, error_result
from hotplex.agent_tools.shared import SharedSocket, socket_path
from hotplex.events import AuditEvent
from hotplex.records import AgentToolSpec, ToolCallContext
from hotplex.tool_names import opencode_tool_name

if TYPE_CHECKING:
    from hotplex.context import PluginContext

__all__ = ["CALL_TIMEOUT", "AgentToolBridge", "Audit", "RpcError", "SessionResolver"]

log = logging.getLogger(__name__)

CALL_TIMEOUT = 60.0
"""Seconds a handler may run before the call fails."""

SessionResolver = Callable[[str], "tuple[str, str | None] | None"]
"""Maps the session id an agent was started under to (session id, address), or None."""

Audit = Callable[[AuditEvent], Awaitable[None]]
"""Where refused calls are reported (the runtime's ``emit``)."""


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, default=str, ensure_ascii=False)


class AgentToolBridge:
    """Runs ``tools`` for the agents of one engine. Use it as an async context manager (or
    call :meth:`aclose`): it closes the socket when one was opened."""

    def __init__(
        self,
        tools: Mapping[str, AgentToolSpec],
        plugin_context: PluginContext,
        *,
        data_dir: Path | None = None,
        path: Path | None = None,
        resolve: SessionResolver | None = None,
        audit: Audit | None = None,
        call_timeout: float = CALL_TIMEOUT,
    ) -> None:
        self.tools = dict(tools)
        self.plugin_context = plugin_context
        data_dir = Path(data_dir or plugin_context.settings.engine.data_dir).resolve()
        self.resolve = resolve
        self.audit = audit
        self.call_timeout = call_timeout
        #: Approved calls of agents that share one MCP server per directory (OpenCode).
        self.grants = CallGrants(opencode_tool_name(SERVER_NAME, name) for name in self.tools)
        self.socket = SharedSocket(self, path or socket_path(data_dir))

    def catalog(self) -> list[dict[str, Any]]:
        """The tools in MCP ``tools/list`` form."""
        return [
            {"name": t.name, "description": t.description, "inputSchema": dict(t.input_schema)}
            for t in self.tools.values()
        ]

    async def shared_server(self) -> dict[str, Any]:
        """The stdio MCP server entry for an agent server that runs one ``hotplex`` server
        per work directory (OpenCode); opens the bridge's socket on first use."""
        return shared_server_entry(await self.socket.open())

    async def aclose(self) -> None:
        await self.socket.aclose()

    async def __aenter__(self) -> AgentToolBridge:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def call(
        self, params: Mapping[str, Any], *, session: str = "", directory: str | None = None
    ) -> dict[str, Any]:
        """Run one ``tools/call`` (its ``params``) for ``session``, or, from a server shared
        by the sessions of ``directory``, for the session of the call's grant; the MCP
        result. An unknown tool or bad arguments raise :class:`RpcError`."""
        name = params.get("name")
        spec = self.tools.get(name) if isinstance(name, str) else None
        if spec is None:
            known = ", ".join(sorted(self.tools)) or "none"
            raise RpcError(-32602, f"unknown tool: {name!r} (known: {known})")
        arguments = params.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise RpcError(-32602, "arguments must be an object")
        if directory is not None:  # a shared server: the session is the grant's
            granted = self.grants.take(
                directory, opencode_tool_name(SERVER_NAME, spec.name), arguments
            )
            if granted is None:
                await self.refused(spec.name, "no approval for this call", directory=directory)
                return error_result(f"tool {name} was not approved for this call")
            session = granted
        ctx = self._context(session)
        try:
            value = await asyncio.wait_for(spec.handler(arguments, ctx), self.call_timeout)
        except TimeoutError:
            log.warning("agent tool %s timed out after %ss", name, self.call_timeout)
            return error_result(f"tool {name} timed out after {self.call_timeout:g}s")
        except Exception as exc:
            log.exception("agent tool %s failed", name)
            return error_result(f"tool {name} failed: {type(exc).__name__}: {exc}")
        return {"content": [{"type": "text", "text": _text(value)}], "isError": False}

    async def refused(
        self, tool: str, reason: str, *, session: str | None = None, **data: Any
    ) -> None:
        """Log and audit (``agent_tool.refused``) a call that did not prove its session;
        ``session`` is the one it claimed or came from, when known."""
        log.warning("agent tool call refused: %s (%s)", reason, tool)
        if self.audit is None:
            return
        resolved = self.resolve(session) if self.resolve is not None and session else None
        event = AuditEvent(
            "agent_tool.refused",
            {"tool": tool, "reason": reason, **data},
            session_id=resolved[0] if resolved is not None else session,
            actor="system",
        )
        try:
            await self.audit(event)
        except Exception:
            log.exception("auditing a refused agent tool call failed")

    def _context(self, session: str) -> ToolCallContext:
        resolved = self.resolve(session) if self.resolve is not None and session else None
        session_id, address = resolved if resolved is not None else (session, None)
        return ToolCallContext(session_id, address, self.plugin_context)
