"""The ``hotplex`` stdio MCP server an agent server runs for each working directory
(OpenCode): ``python -I .../hotplex/agent_tools/stdio.py --socket PATH``. Its calls carry
its working directory, and the bridge runs them only against a grant the provider gave on
approving the call (Claude Code needs no such process: its agents get the tools in-process).

It speaks the minimal MCP JSON-RPC (``initialize``, ``ping``, ``tools/list``, ``tools/call``)
on stdin/stdout, one message a line, and forwards the tool requests to the daemon's bridge
over the unix socket. Calls run in threads, so a slow tool does not hold up the others.
Only the standard library, run as a script (not through the ``hotplex`` package): it starts
fast and needs nothing the CLI's environment lacks.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
from collections.abc import Sequence
from typing import IO, Any

__all__ = ["SOCKET_TIMEOUT", "StdioServer", "main"]

PROTOCOL_VERSION = "2025-06-18"
SOCKET_TIMEOUT = 75.0
"""Seconds to wait for the bridge; a bit above its own per-call timeout (60 s)."""
SERVER_INFO = {"name": "hotplex", "version": "1"}


class BridgeError(Exception):
    pass


class StdioServer:
    def __init__(
        self,
        socket_path: str,
        directory: str,
        *,
        out: IO[str] | None = None,
        timeout: float = SOCKET_TIMEOUT,
    ) -> None:
        self.socket_path = socket_path
        self.directory = directory
        self.timeout = timeout
        self._out = out if out is not None else sys.stdout
        self._lock = threading.Lock()
        self._ids = iter(range(1, 1 << 62))
        self._threads: list[threading.Thread] = []

    # -- output ------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":"))
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    def _reply(self, request_id: Any, result: dict[str, Any]) -> None:
        self.send({"jsonrpc": "2.0", "id": request_id, "result": result})

    def _error(self, request_id: Any, code: int, message: str) -> None:
        self.send({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}})

    # -- the bridge --------------------------------------------------------------------

    def forward(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request to the bridge; its result, or BridgeError with its message."""
        with self._lock:
            bridge_id = next(self._ids)
        request: dict[str, Any] = {"id": bridge_id, "method": method, "directory": self.directory}
        if params is not None:
            request["params"] = params
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(self.socket_path)
                sock.sendall(json.dumps(request).encode() + b"\n")
                with sock.makefile("rb") as reader:
                    line = reader.readline()
        except TimeoutError as exc:
            raise BridgeError(f"HotPlex did not answer within {self.timeout:g}s") from exc
        except OSError as exc:
            raise BridgeError(f"HotPlex is not reachable at {self.socket_path}: {exc}") from exc
        if not line:
            raise BridgeError("HotPlex closed the connection without an answer")
        reply = json.loads(line)
        if "error" in reply:
            error = reply["error"] or {}
            raise BridgeError(str(error.get("message", "error")), int(error.get("code", -32603)))
        result = reply.get("result")
        return result if isinstance(result, dict) else {}

    # -- requests ----------------------------------------------------------------------

    def handle(self, message: Any) -> None:
        if not isinstance(message, dict):
            self._error(None, -32600, "invalid request")
            return
        method = message.get("method")
        request_id = message.get("id")
        if "id" not in message:
            return  # a notification (notifications/initialized, cancelled): nothing to say
        if method == "initialize":
            params = message.get("params") or {}
            version = params.get("protocolVersion") if isinstance(params, dict) else None
            self._reply(
                request_id,
                {
                    "protocolVersion": version if isinstance(version, str) else PROTOCOL_VERSION,
                    "capabilities": {"tools": {"listChanged": False}},
                    "serverInfo": SERVER_INFO,
                },
            )
        elif method == "ping":
            self._reply(request_id, {})
        elif method == "tools/list":
            self._answer_from_bridge(request_id, "tools/list", None)
        elif method == "tools/call":
            params = message.get("params")
            thread = threading.Thread(
                target=self._answer_from_bridge,
                args=(request_id, "tools/call", params if isinstance(params, dict) else {}),
                daemon=True,
            )
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
            thread.start()
        else:
            self._error(request_id, -32601, f"method not found: {method}")

    def _answer_from_bridge(
        self, request_id: Any, method: str, params: dict[str, Any] | None
    ) -> None:
        try:
            result = self.forward(method, params)
        except BridgeError as exc:
            code = exc.args[1] if len(exc.args) > 1 else -32603
            self._error(request_id, code, str(exc.args[0]))
            return
        except Exception as exc:  # a bad answer must not kill the server
            self._error(request_id, -32603, f"{type(exc).__name__}: {exc}")
            return
        self._reply(request_id, result)

    def serve(self, stdin: IO[str]) -> None:
        for line in stdin:
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except json.JSONDecodeError as exc:
                self._error(None, -32700, f"parse error: {exc}")
                continue
            if isinstance(message, list):  # a batch
                for item in message:
                    self.handle(item)
            else:
                self.handle(message)
        for thread in self._threads:
            thread.join(self.timeout)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -I stdio.py")
    parser.add_argument("--socket", required=True, help="the bridge's unix socket")
    args = parser.parse_args(argv)
    StdioServer(args.socket, os.getcwd()).serve(sys.stdin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
