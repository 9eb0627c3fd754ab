"""The Socket Mode WebSocket: ``hello``, envelopes, acks, ``disconnect``, pings.

``apps.connections.open`` mints a one-use ticket URL ``ws://127.0.0.1:PORT/link/?ticket=…``;
the socket then gets ``hello`` and every envelope the fake delivers. Pings are answered with
pongs carrying the same data, unless the connection was silenced (a half-open socket: frames
in both directions are dropped, nothing is closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from hotplex.testing.slack.records import JSON
from hotplex.testing.slack.state import SlackState

AckHandler = Callable[[str, object], None]


@dataclass(eq=False)
class Connection:
    """One Socket Mode client connection."""

    id: str
    ws: web.WebSocketResponse
    #: Frames to and from this socket are dropped (half-open connection).
    silenced: bool = False
    #: A ``disconnect`` was sent; no new envelopes go here.
    closing: bool = False
    received: list[JSON] = field(default_factory=list)
    pings: int = 0


class SocketModeServer:
    """Accepts Socket Mode clients and sends them envelopes."""

    def __init__(
        self, state: SlackState, *, on_ack: AckHandler, on_connect: Callable[[], None]
    ) -> None:
        self.state = state
        self._on_ack = on_ack
        self._on_connect = on_connect
        self._tickets: set[str] = set()
        self.connections: list[Connection] = []
        #: Every connection ever accepted (``connections`` holds the open ones).
        self.history: list[Connection] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/link/", self.handle), web.get("/link", self.handle)]

    def open_url(self) -> str:
        ticket = secrets.token_urlsafe(12)
        self._tickets.add(ticket)
        base = self.state.settings.public_url.replace("http://", "ws://", 1)
        return f"{base}/link/?ticket={ticket}&app_id={self.state.app_id}"

    def target(self) -> Connection | None:
        """The newest connection that takes envelopes (a silenced one does, and loses them)."""
        for connection in reversed(self.connections):
            if not connection.closing and not connection.ws.closed:
                return connection
        return None

    async def send(self, connection: Connection, message: JSON) -> bool:
        """Send ``message``; ``False`` if it was lost (silenced or closed socket)."""
        if connection.silenced or connection.ws.closed:
            return False
        try:
            await connection.ws.send_str(json.dumps(message))
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.state.settings.outage:
            return web.Response(status=503, text="service unavailable")
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=False, max_msg_size=0)
        await ws.prepare(request)
        connection = Connection(self.state.new_id("WS"), ws)
        if len(self.connections) >= self.state.settings.max_connections:
            await self.send(connection, self._disconnect_message("too_many_websockets"))
            await ws.close()
            self.history.append(connection)
            self.state.changed()
            return ws
        self.connections.append(connection)
        self.history.append(connection)
        await self.send(connection, self._hello())
        self.state.changed()
        self._on_connect()
        try:
            await self._receive(connection)
        finally:
            self.connections.remove(connection)
            self.state.changed()
        return ws

    def _hello(self) -> JSON:
        return {
            "type": "hello",
            "num_connections": len(self.connections),
            "debug_info": {
                "host": "applink-fake",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.state.app_id},
        }

    async def _receive(self, connection: Connection) -> None:
        async for frame in connection.ws:
            if connection.silenced:
                continue
            if frame.type == WSMsgType.PING:
                connection.pings += 1
                await connection.ws.pong(frame.data)
                self.state.changed()
            elif frame.type == WSMsgType.TEXT:
                self._text(connection, frame.data)
            elif frame.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break

    def _text(self, connection: Connection, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        connection.received.append(message)
        envelope_id = message.get("envelope_id")
        if isinstance(envelope_id, str):
            self._on_ack(envelope_id, message.get("payload"))
        self.state.changed()

    async def disconnect(self, reason: str, *, close_after: float) -> None:
        """Send ``disconnect`` to every open connection and close them ``close_after`` s later."""
        for connection in list(self.connections):
            connection.closing = True
            await self.send(connection, self._disconnect_message(reason))
            self._spawn(self._close_later(connection, close_after))
        self.state.changed()

    @staticmethod
    def _disconnect_message(reason: str) -> JSON:
        return {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}

    async def _close_later(self, connection: Connection, delay: float) -> None:
        await asyncio.sleep(delay)
        await connection.ws.close()

    async def close_all(self, code: int = 1001) -> None:
        """Close every connection with a close frame (what a server restart looks like)."""
        for connection in list(self.connections):
            connection.closing = True
            await connection.ws.close(code=code)

    def silence(self) -> None:
        """Make every open connection half-open: nothing in, nothing out, no close."""
        for connection in self.connections:
            connection.silenced = True
        self.state.changed()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.close_all(code=1001)
