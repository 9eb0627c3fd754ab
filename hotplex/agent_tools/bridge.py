"""The daemon side: a unix socket server that runs the registered agent tools.

Wire format (one JSON object a line, one request per connection or several in turn)::

    -> {"id": 1, "method": "tools/list", "session": "<session id>"}
    <- {"id": 1, "result": {"tools": [...]}}
    -> {"id": 2, "method": "tools/call", "session": "...", "params": {"name": ..., "arguments": {}}}
    <- {"id": 2, "result": {"content": [{"type": "text", "text": "..."}], "isError": false}}
    <- {"id": 3, "error": {"code": -32602, "message": "unknown tool: nope"}}

A call with ``"directory"`` instead of a session comes from a server shared by the sessions
of that directory (OpenCode); it runs only against a grant (:mod:`.grants`), which names its
session. An unknown tool is a JSON-RPC error; a handler that raises or times out gives a result with
``isError: true`` (MCP reports tool failures that way, and the agent sees the message).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotplex.agent_tools.config import SERVER_NAME, server_entry
from hotplex.agent_tools.grants import CallGrants, opencode_tool_name
from hotplex.records import AgentToolSpec, ToolCallContext

if TYPE_CHECKING:
    from hotplex.context import PluginContext

__all__ = [
    "CALL_TIMEOUT",
    "AgentToolBridge",
    "SessionResolver",
    "active_grants",
    "active_socket",
    "mcp_servers",
    "socket_path",
]

log = logging.getLogger(__name__)

CALL_TIMEOUT = 60.0
"""Seconds a handler may run before the call fails."""
MAX_LINE = 16 * 1024 * 1024
MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux, 104 on macOS

SessionResolver = Callable[[str], "tuple[str, str | None] | None"]
"""Maps the session id the CLI was started with to (session id, address), or None."""

# data_dir -> socket path of the bridge running for it (in this process)
_ACTIVE: dict[Path, Path] = {}
# socket path -> the grants of the bridge serving it (in this process)
_GRANTS: dict[Path, CallGrants] = {}


def socket_path(data_dir: Path) -> Path:
    """``<data_dir>/run/agent-tools.sock``, or a short path in the temp dir when that one
    is too long for a unix socket."""
    path = Path(data_dir).resolve() / "run" / "agent-tools.sock"
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"hotplex-{os.getuid()}-{digest}.sock"


def active_socket(data_dir: Path) -> Path | None:
    """The socket of the bridge running for ``data_dir`` in this process, if any."""
    return _ACTIVE.get(Path(data_dir).resolve())


def active_grants(socket: Path | str) -> CallGrants | None:
    """The grants of the bridge running on ``socket`` in this process, if any."""
    return _GRANTS.get(Path(socket))


def mcp_servers(data_dir: Path, session_id: str) -> dict[str, dict[str, Any]]:
    """The MCP servers an agent of ``session_id`` gets: ``hotplex`` while a bridge runs."""
    socket = active_socket(data_dir)
    if socket is None:
        return {}
    return {SERVER_NAME: server_entry(socket, session_id)}


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, default=str, ensure_ascii=False)


class AgentToolBridge:
    """Serves ``tools`` to the stdio MCP servers the agents run, on a 0600 unix socket."""

    def __init__(
        self,
        tools: Mapping[str, AgentToolSpec],
        plugin_context: PluginContext,
        *,
        data_dir: Path | None = None,
        path: Path | None = None,
        resolve: SessionResolver | None = None,
        call_timeout: float = CALL_TIMEOUT,
    ) -> None:
        self.tools = dict(tools)
        self.plugin_context = plugin_context
        self.data_dir = Path(data_dir or plugin_context.settings.engine.data_dir).resolve()
        self.path = path or socket_path(self.data_dir)
        self.resolve = resolve
        self.call_timeout = call_timeout
        self.grants = CallGrants(opencode_tool_name(SERVER_NAME, name) for name in self.tools)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    def catalog(self, session: str | None = None) -> list[dict[str, Any]]:
        """The tools in MCP ``tools/list`` form: those offered to ``session``'s address
        (:meth:`AgentToolSpec.offered_to`), or every tool when the session is not known."""
        address = self._context(session).address if session else None
        return [
            {"name": t.name, "description": t.description, "inputSchema": dict(t.input_schema)}
            for t in self.tools.values()
            if session is None or t.offered_to(address)
        ]

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a stale socket of a daemon that died
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=MAX_LINE
            )
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        _ACTIVE[self.data_dir] = self.path
        _GRANTS[self.path] = self.grants
        log.info("agent tools bridge on %s (%d tools)", self.path, len(self.tools))

    async def aclose(self) -> None:
        if _ACTIVE.get(self.data_dir) == self.path:
            del _ACTIVE[self.data_dir]
        if _GRANTS.get(self.path) is self.grants:
            del _GRANTS[self.path]
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def __aenter__(self) -> AgentToolBridge:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            while line := await reader.readline():
                reply = await self.handle_line(line)
                writer.write(json.dumps(reply, ensure_ascii=False).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, ValueError, asyncio.IncompleteReadError) as exc:
            log.debug("agent tools connection ended: %r", exc)
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def handle_line(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except json.JSONDecodeError as exc:
            return {"id": None, "error": {"code": -32700, "message": f"parse error: {exc}"}}
        if not isinstance(request, dict):
            return {"id": None, "error": {"code": -32600, "message": "expected an object"}}
        request_id = request.get("id")
        try:
            result = await self.handle(request)
        except _RpcError as exc:
            return {"id": request_id, "error": {"code": exc.code, "message": str(exc)}}
        return {"id": request_id, "result": result}

    async def handle(self, request: Mapping[str, Any]) -> dict[str, Any]:
        method = request.get("method")
        if method == "tools/list":
            return {"tools": self.catalog(str(request.get("session") or "") or None)}
        if method != "tools/call":
            raise _RpcError(-32601, f"unknown method: {method!r}")
        params = request.get("params") or {}
        if not isinstance(params, Mapping):
            raise _RpcError(-32602, "params must be an object")
        name = params.get("name")
        spec = self.tools.get(name) if isinstance(name, str) else None
        if spec is None:
            known = ", ".join(sorted(self.tools)) or "none"
            raise _RpcError(-32602, f"unknown tool: {name!r} (known: {known})")
        arguments = params.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise _RpcError(-32602, "arguments must be an object")
        session = str(request.get("session") or "")
        directory = request.get("directory")
        if isinstance(directory, str):  # a shared server: the session is the grant's
            granted = self.grants.take(
                directory, opencode_tool_name(SERVER_NAME, spec.name), arguments
            )
            if granted is None:
                log.warning("agent tool %s called from %s without an approval", name, directory)
                return _error_result(f"tool {name} was not approved for this call")
            session = granted
        ctx = self._context(session)
        if not spec.offered_to(ctx.address):
            log.warning(
                "agent tool %s refused for %s (platforms %s)", name, ctx.address, spec.platforms
            )
            return _error_result(f"tool {name} is not available in this conversation")
        timeout = spec.timeout if spec.timeout is not None else self.call_timeout
        try:
            value = await asyncio.wait_for(spec.handler(arguments, ctx), timeout)
        except TimeoutError:
            log.warning("agent tool %s timed out after %ss", name, timeout)
            return _error_result(f"tool {name} timed out after {timeout:g}s")
        except Exception as exc:
            log.exception("agent tool %s failed", name)
            return _error_result(f"tool {name} failed: {type(exc).__name__}: {exc}")
        return {"content": [{"type": "text", "text": _text(value)}], "isError": False}

    def _context(self, session: str) -> ToolCallContext:
        resolved = self.resolve(session) if self.resolve is not None and session else None
        session_id, address = resolved if resolved is not None else (session, None)
        return ToolCallContext(session_id, address, self.plugin_context)


class _RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _error_result(message: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": message}], "isError": True}
