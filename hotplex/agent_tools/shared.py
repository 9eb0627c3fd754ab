"""The bridge's unix socket, for MCP servers shared by the sessions of a work directory.

OpenCode runs one ``hotplex`` stdio MCP server (:mod:`.stdio`) per work directory; it
forwards the tool requests here, one JSON object a line::

    -> {"id": 1, "method": "tools/list", "directory": "/work/dir"}
    <- {"id": 1, "result": {"tools": [...]}}
    -> {"id": 2, "method": "tools/call", "directory": "...", "params": {"name": ...}}
    <- {"id": 2, "result": {"content": [{"type": "text", "text": "..."}], "isError": false}}
    <- {"id": 3, "error": {"code": -32602, "message": "unknown tool: nope"}}

A call names its directory, never its session: the bridge runs it only against a grant the
gate left for that directory, tool and arguments. Any other call (one naming a session, as
any process of the daemon's user could) is refused and audited (``agent_tool.refused``).
The socket is mode 0600 in a 0700 directory and opened only when a provider asks for it
(Claude Code never does).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotplex.agent_tools.rpc import RpcError

if TYPE_CHECKING:
    from hotplex.agent_tools.bridge import AgentToolBridge

__all__ = ["MAX_LINE", "SharedSocket", "socket_path"]

log = logging.getLogger(__name__)

MAX_LINE = 16 * 1024 * 1024
MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux, 104 on macOS


def socket_path(data_dir: Path) -> Path:
    """``<data_dir>/run/agent-tools.sock``, or a short path in the temp dir when that one
    is too long for a unix socket."""
    path = Path(data_dir).resolve() / "run" / "agent-tools.sock"
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"hotplex-{os.getuid()}-{digest}.sock"


class SharedSocket:
    """Serves ``bridge`` on a unix socket at ``path`` once :meth:`open` was awaited."""

    def __init__(self, bridge: AgentToolBridge, path: Path) -> None:
        self.bridge = bridge
        self.path = path
        self._server: asyncio.Server | None = None
        self._lock = asyncio.Lock()
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def serving(self) -> bool:
        return self._server is not None

    async def open(self) -> Path:
        """Start serving (once); the socket's path."""
        async with self._lock:
            if self._server is not None:
                return self.path
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
            log.info("agent tools socket on %s (%d tools)", self.path, len(self.bridge.tools))
            return self.path

    async def aclose(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5.0)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

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
        """The answer to one request line."""
        try:
            request = json.loads(line)
        except json.JSONDecodeError as exc:
            return {"id": None, "error": {"code": -32700, "message": f"parse error: {exc}"}}
        if not isinstance(request, dict):
            return {"id": None, "error": {"code": -32600, "message": "expected an object"}}
        try:
            result = await self.handle(request)
        except RpcError as exc:
            return {"id": request.get("id"), "error": {"code": exc.code, "message": str(exc)}}
        return {"id": request.get("id"), "result": result}

    async def handle(self, request: Mapping[str, Any]) -> dict[str, Any]:
        method = request.get("method")
        if method == "tools/list":
            return {"tools": self.bridge.catalog()}
        if method != "tools/call":
            raise RpcError(-32601, f"unknown method: {method!r}")
        params = request.get("params") or {}
        if not isinstance(params, Mapping):
            raise RpcError(-32602, "params must be an object")
        directory = request.get("directory")
        if not isinstance(directory, str):  # nothing proves a session named on the socket
            claimed = request.get("session")
            await self.bridge.refused(
                str(params.get("name")),
                "a call on the socket named a session instead of its directory",
                session=claimed if isinstance(claimed, str) else None,
            )
            raise RpcError(-32602, "refused: a call names its directory and needs an approval")
        return await self.bridge.call(params, directory=directory)
