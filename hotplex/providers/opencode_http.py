"""HTTP to the shared ``opencode serve``: its address and credentials, one API call, and
the errors a call raises (:class:`ServerUnavailable`, :class:`HttpStatusError`)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from hotplex.agent_process import AgentSubprocess
from hotplex.errors import ProtocolError

__all__ = [
    "REQUEST_TIMEOUT",
    "USERNAME",
    "HttpStatusError",
    "OpenCodeHttp",
    "ServerProcess",
    "ServerUnavailable",
    "free_port",
]

USERNAME = "opencode"
REQUEST_TIMEOUT = 30.0


class ServerUnavailable(ProtocolError):
    """The OpenCode server could not be reached."""


class HttpStatusError(ProtocolError):
    """The OpenCode server answered with an HTTP error status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """One running ``opencode serve``: its process group, port and password."""

    sub: AgentSubprocess
    port: int
    password: str
    drain: asyncio.Task[None]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        token = base64.b64encode(f"{USERNAME}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}


class OpenCodeHttp:
    """The provider's view of its server: whether it is up, and calls to its API."""

    request_timeout: float
    _server: ServerProcess | None
    _http: aiohttp.ClientSession | None
    _ready: asyncio.Event
    _stream_ready: asyncio.Event
    _windows: dict[tuple[str, str], int]

    @property
    def server_alive(self) -> bool:
        server = self._server
        return self._ready.is_set() and server is not None and server.sub.running

    @property
    def server_pid(self) -> int | None:
        return self._server.sub.pid if self._server is not None else None

    async def request(
        self,
        method: str,
        path: str,
        *,
        directory: str | None = None,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One API call; the decoded JSON answer (None when empty). Raises
        ServerUnavailable when the server cannot be reached, HttpStatusError on >= 400."""
        server, http = self._server, self._http
        if server is None or http is None or not self.server_alive:
            raise ServerUnavailable("the OpenCode server is not running")
        query = dict(params or {})
        if directory is not None:
            query["directory"] = directory
        try:
            async with http.request(
                method,
                server.url + path,
                params=query,
                json=body,
                headers=server.headers,
                timeout=aiohttp.ClientTimeout(total=timeout or self.request_timeout),
            ) as resp:
                text = await resp.text()
                if resp.status >= 400:
                    raise HttpStatusError(
                        f"{method} {path}: HTTP {resp.status}: {text[:300]}", resp.status
                    )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ServerUnavailable(f"{method} {path}: {exc!r}") from exc
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text

    @property
    def stream_live(self) -> bool:
        """True while the event stream of the current server is connected."""
        return self._stream_ready.is_set()

    async def wait_stream(self, timeout: float) -> None:
        """Wait (bounded) until the event stream is connected."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stream_ready.wait(), timeout)

    async def context_window(self, model: tuple[str, str] | None, directory: str) -> int:
        if model is None:
            return 0
        if model not in self._windows:
            try:
                data = await self.request(
                    "GET", "/config/providers", directory=directory, timeout=5.0
                )
            except ProtocolError:
                return 0
            for provider in (data or {}).get("providers") or []:
                for model_id, info in (provider.get("models") or {}).items():
                    limit = (info or {}).get("limit") or {}
                    self._windows[(str(provider.get("id")), str(model_id))] = int(
                        limit.get("context") or 0
                    )
        return self._windows.get(model, 0)
