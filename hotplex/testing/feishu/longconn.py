"""The long connection as lark-oapi's ``ws.Client`` expects it (platforms.md B8).

1. ``POST /callback/ws/endpoint`` with ``{"AppID", "AppSecret"}`` answers
   ``{"code": 0, "data": {"URL": "ws://127.0.0.1:PORT/ws?device_id=..&service_id=..",
   "ClientConfig": {ReconnectCount, ReconnectInterval, ReconnectNonce, PingInterval}}}``
   (all four keys: the SDK assigns each one). Wrong credentials answer code 10014, which
   the SDK raises as a ``ClientException`` and stops.
2. ``GET /ws`` upgrades only with a ``device_id`` the endpoint handed out (each once); a
   handshake can be refused with ``handshake-status``/``-msg``/``-autherrcode`` headers.
3. Every message is a binary protobuf :class:`~hotplex.testing.feishu.frames.Frame`. A
   client ``ping`` (method 0) gets a ``pong`` carrying the ClientConfig; events go out as
   method 1 with the headers ``type`` (``event``), ``message_id``, ``sum``, ``seq``,
   ``trace_id``; the client's ack is the same frame echoed with payload
   ``{"code": 200[, "data": base64(JSON answer)]}`` and is matched by ``SeqID``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from aiohttp import WSMsgType, web

from hotplex.testing.feishu import limits as codes
from hotplex.testing.feishu.frames import CONTROL, DATA, Frame, FrameError
from hotplex.testing.feishu.limits import Clock, FeishuError
from hotplex.testing.feishu.models import Ack

__all__ = ["Connection", "LongConnection", "Push"]

JSON = dict[str, Any]
ENDPOINT_PATH = "/callback/ws/endpoint"
WS_PATH = "/ws"
DEFAULT_CLIENT_CONFIG: Mapping[str, int] = MappingProxyType(
    {
        "ReconnectCount": -1,
        "ReconnectInterval": 1,
        "ReconnectNonce": 0,
        "PingInterval": 120,
    }
)


@dataclass
class Connection:
    device_id: str
    ws: web.WebSocketResponse
    opened: float
    transport: asyncio.Transport | None = None
    pings: int = 0


@dataclass
class Push:
    """One data frame (or fragmented message) waiting for its ack."""

    event_id: str
    answered: asyncio.Future[Ack]
    seq_ids: list[int] = field(default_factory=list)


class LongConnection:
    """The endpoint and WebSocket routes, the live connections and the acks."""

    def __init__(
        self,
        *,
        app_id: str,
        app_secret: str,
        clock: Clock,
        on_change: Callable[[], None],
        client_config: JSON | None = None,
        injected: Callable[[str, str], FeishuError | None] = lambda name, path: None,
        max_connections: int = 50,
    ) -> None:
        self.max_connections = max_connections
        self.app_id = app_id
        self.app_secret = app_secret
        self.clock = clock
        self.client_config: JSON = {**DEFAULT_CLIENT_CONFIG, **(client_config or {})}
        self.service_id = 4242
        self.connections: list[Connection] = []
        self.acks: list[Ack] = []
        self.endpoint_requests = 0
        self.pings = 0  # protocol pings received, over all connections
        self.pongs = 0
        self.muted = False  # answer no pings (protocol or WebSocket): a silent socket
        self.endpoint_answer: JSON | None = None  # set to answer every endpoint call with it
        self.handshake_rejection: dict[str, str] | None = None
        self._on_change = on_change
        self._injected = injected
        self._tickets: set[str] = set()
        self._pending: dict[int, Push] = {}
        self._event_of_seq: dict[int, str] = {}  # every frame sent, for late acks
        self._seq = itertools.count(1)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(ENDPOINT_PATH, self._endpoint)
        app.router.add_get(WS_PATH, self._websocket)

    def configure(self, values: JSON) -> None:
        unknown = set(values) - set(self.client_config)
        if unknown:
            raise ValueError(f"unknown ClientConfig keys: {sorted(unknown)}")
        self.client_config = {**self.client_config, **values}

    def reject_handshake(self, status: int | None, msg: str, auth_code: int | None) -> None:
        if status is None:
            self.handshake_rejection = None
            return
        headers = {"handshake-status": str(status), "handshake-msg": msg}
        if auth_code is not None:
            headers["handshake-autherrcode"] = str(auth_code)
        self.handshake_rejection = headers

    # --- step 1: endpoint discovery -------------------------------------------------------

    async def _endpoint(self, request: web.Request) -> web.Response:
        self.endpoint_requests += 1
        self._on_change()
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            body = {}
        if self.endpoint_answer is not None:
            return web.json_response(self.endpoint_answer)
        error = self._injected("ws.endpoint", request.path)
        if error is not None:
            return web.json_response({"code": error.code, "msg": error.msg})
        if not isinstance(body, dict) or (
            body.get("AppID") != self.app_id or body.get("AppSecret") != self.app_secret
        ):
            return web.json_response(
                {"code": codes.APP_SECRET_INVALID, "msg": "app secret invalid"}
            )
        device_id = "d_" + secrets.token_hex(8)
        self._tickets.add(device_id)
        url = f"ws://{request.host}{WS_PATH}?device_id={device_id}&service_id={self.service_id}"
        return web.json_response(
            {"code": 0, "msg": "ok", "data": {"URL": url, "ClientConfig": self.client_config}}
        )

    # --- step 2: the socket ---------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if self.handshake_rejection is not None:
            return web.Response(status=403, headers=self.handshake_rejection)
        device_id = request.query.get("device_id", "")
        if device_id not in self._tickets or request.query.get("service_id") != str(
            self.service_id
        ):
            return web.Response(
                status=403,
                headers={
                    "handshake-status": "403",
                    "handshake-msg": "unknown device_id",
                },
            )
        self._tickets.discard(device_id)
        if sum(1 for c in self.connections if not c.ws.closed) >= self.max_connections:
            return web.Response(
                status=403,
                headers={
                    "handshake-status": "514",
                    "handshake-msg": "exceed connection limit",
                    "handshake-autherrcode": str(codes.WS_EXCEED_CONN_LIMIT),
                },
            )
        ws = web.WebSocketResponse(autoping=False, max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        transport = request.transport
        connection = Connection(
            device_id,
            ws,
            self.clock(),
            transport if isinstance(transport, asyncio.Transport) else None,
        )
        self.connections.append(connection)
        self._on_change()
        try:
            async for message in ws:
                if message.type == WSMsgType.BINARY:
                    await self._frame(connection, message.data)
                elif message.type == WSMsgType.PING and not self.muted:
                    await ws.pong(message.data)
        finally:
            self.connections.remove(connection)
            self._on_change()
        return ws

    async def _frame(self, connection: Connection, data: bytes) -> None:
        try:
            frame = Frame.decode(data)
        except FrameError:
            return
        if frame.method == CONTROL and frame.header("type") == "ping":
            connection.pings += 1
            self.pings += 1
            self._on_change()
            if self.muted:
                return
            pong = Frame(
                0,
                0,
                self.service_id,
                CONTROL,
                [("type", "pong")],
                payload=json.dumps(self.client_config).encode("utf-8"),
            )
            await connection.ws.send_bytes(pong.encode())
            self.pongs += 1
            self._on_change()
        elif frame.method == DATA:
            self._ack(frame)

    def _ack(self, frame: Frame) -> None:
        push = self._pending.get(frame.seq_id)
        try:
            payload = json.loads(frame.payload or b"{}")
        except ValueError:
            payload = {}
        data = None
        if isinstance(payload, dict) and isinstance(payload.get("data"), str):
            try:
                data = json.loads(base64.b64decode(payload["data"]))
            except (ValueError, binascii.Error):
                data = None
        code = payload.get("code") if isinstance(payload, dict) else None
        ack = Ack(
            self._event_of_seq.get(frame.seq_id, ""),
            frame.seq_id,
            code if isinstance(code, int) else 0,
            data if isinstance(data, dict) else None,
            tuple(frame.headers),
            self.clock(),
        )
        self.acks.append(ack)
        if push is not None:
            for seq_id in push.seq_ids:
                self._pending.pop(seq_id, None)
            if not push.answered.done():
                push.answered.set_result(ack)
        self._on_change()

    # --- pushing --------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return any(not c.ws.closed for c in self.connections)

    async def push(
        self,
        event_id: str,
        payload: bytes,
        *,
        fragments: int = 1,
        timeout: float,
        lose_fragment: int | None = None,
    ) -> Ack | None:
        """Send ``payload`` as an ``event`` data frame (split into ``fragments`` parts) to one
        live connection (the oldest, as Feishu picks one per event); the ack, or None when
        none came within ``timeout`` seconds or the connection went away."""
        connection = next((c for c in self.connections if not c.ws.closed), None)
        if connection is None:
            raise RuntimeError("no long connection is open")
        answered: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        push = Push(event_id, answered)
        message_id = "m_" + secrets.token_hex(8)
        size = -(-len(payload) // max(1, fragments))
        parts = [payload[i * size : (i + 1) * size] for i in range(max(1, fragments))]
        frames = []
        for index, part in enumerate(parts):
            seq_id = next(self._seq)
            push.seq_ids.append(seq_id)
            self._pending[seq_id] = push
            self._event_of_seq[seq_id] = event_id
            headers = [
                ("type", "event"),
                ("message_id", message_id),
                ("sum", str(len(parts))),
                ("seq", str(index)),
                ("trace_id", secrets.token_hex(8)),
            ]
            frames.append(
                Frame(seq_id, secrets.randbits(63), self.service_id, DATA, headers, payload=part)
            )
        try:
            for index, frame in enumerate(frames):
                if index != lose_fragment:
                    await connection.ws.send_bytes(frame.encode())
            return await asyncio.wait_for(asyncio.shield(answered), timeout)
        except (TimeoutError, ConnectionError, RuntimeError):
            return None
        finally:
            for seq_id in push.seq_ids:
                self._pending.pop(seq_id, None)

    async def drop(self, *, abrupt: bool = False) -> None:
        """Close every connection from the server side (the client reconnects); ``abrupt``
        cuts the TCP connection without a closing handshake."""
        for connection in list(self.connections):
            if abrupt and connection.transport is not None:
                connection.transport.abort()
            else:
                await connection.ws.close(code=1001, message=b"going away")
