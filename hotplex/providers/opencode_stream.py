"""The event pump: one ``GET /global/event`` stream per provider, read for as long as it
lives (reconnecting with backoff) and dispatched to sessions by ``sessionID``; events of a
subagent's session go to the session that started it."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

import aiohttp

from hotplex.errors import ProtocolError
from hotplex.providers.opencode_events import SSEParser
from hotplex.providers.opencode_http import OpenCodeHttp

if TYPE_CHECKING:
    from hotplex.providers.opencode_session import OpenCodeSession

__all__ = ["MAX_FRAME", "SSE_READ_TIMEOUT", "OpenCodeEvents"]

log = logging.getLogger("hotplex.providers.opencode")

#: The server sends a heartbeat every 10 s; a stream silent this long is reconnected.
SSE_READ_TIMEOUT = 35.0
MAX_FRAME = 64 * 1024 * 1024


class OpenCodeEvents(OpenCodeHttp):
    """Reads the server's event stream and routes each event to its session."""

    _closed: bool
    _stream: aiohttp.ClientResponse | None
    _sessions: dict[str, OpenCodeSession]
    _children: dict[str, str]

    async def _read_events(self) -> None:
        """Read ``/global/event`` for as long as the provider lives, reconnecting."""
        backoff = 0.1
        while not self._closed:
            await self._ready.wait()
            server, http = self._server, self._http
            if server is None or http is None:
                continue
            try:
                async with http.get(
                    server.url + "/global/event",
                    headers=server.headers,
                    timeout=aiohttp.ClientTimeout(
                        total=None, sock_connect=5.0, sock_read=SSE_READ_TIMEOUT
                    ),
                ) as resp:
                    if resp.status != 200:
                        raise ProtocolError(f"GET /global/event: HTTP {resp.status}")
                    backoff = 0.1
                    self._stream = resp
                    await self._read_stream(resp)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("the OpenCode event stream dropped: %r", exc)
            self._stream = None
            self._stream_ready.clear()
            if self._closed:
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _read_stream(self, resp: aiohttp.ClientResponse) -> None:
        parser = SSEParser(MAX_FRAME)
        async for chunk in resp.content.iter_any():
            for frame in parser.feed(chunk):
                self._on_frame(frame)

    def _on_frame(self, frame: bytes) -> None:
        try:
            message = json.loads(frame)
        except ValueError:
            log.debug("a non-JSON OpenCode event: %.200r", frame)
            return
        if not isinstance(message, dict):
            return
        payload = message.get("payload", message)
        kind = payload.get("type") if isinstance(payload, dict) else None
        if not isinstance(kind, str) or kind in ("sync", "server.heartbeat"):
            return
        if kind == "server.connected":
            if not self._stream_ready.is_set():
                self._stream_ready.set()
                for session in list(self._sessions.values()):
                    session.notify("_resync")
            return
        props = payload.get("properties")
        if not isinstance(props, dict):
            return
        session_id = props.get("sessionID")
        if not isinstance(session_id, str):
            return
        target = self._sessions.get(session_id)
        if target is not None:
            target.deliver(kind, props)
            return
        if kind == "session.created":
            parent = str((props.get("info") or {}).get("parentID") or "")
            parent = self._children.get(parent, parent)
            if parent in self._sessions:
                self._children[session_id] = parent
        root = self._children.get(session_id)
        if root is not None and root in self._sessions:
            self._sessions[root].deliver(kind, props, child=True)

    def unregister(self, session: OpenCodeSession) -> None:
        sid = session.opencode_session_id
        if self._sessions.get(sid) is session:
            del self._sessions[sid]
            for child in [c for c, root in self._children.items() if root == sid]:
                del self._children[child]
