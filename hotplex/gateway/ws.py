"""``GET /ws/v1/agent``: one WebSocket, many sessions.

Frames in: ``execute``, ``interrupt``, ``permission_response``, ``subscribe``, ``ping``.
Frames out: AgentEvents (carrying the client's session id), ``pong`` and error frames.
Each execute runs in its own task (executes.py: a prompt waiting for an approval holds up
nothing else); each running turn and each subscription is relayed by its own task into
the connection's bounded outbox; one writer task sends from it. A client that stops
reading fills its outbox and is closed with 1008; the engine never waits for it. See
docs/gateway.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from hotplex.aio import cancel_and_wait
from hotplex.engine import Turn
from hotplex.events import AgentEvent
from hotplex.gateway.clients import CALLER, GATEWAY_KEY, REPLAY_PUT_TIMEOUT, Caller, Gateway
from hotplex.gateway.executes import Executes, Park
from hotplex.gateway.follow import Follow, relay_follow
from hotplex.gateway.frames import (
    DecisionRequest,
    ExecuteRequest,
    GatewayError,
    dumps,
    error_frame,
    event_frame,
    new_session_id,
    optional_str,
    parse_object,
    request_id_of,
    required_session_id,
    since_seq,
)
from hotplex.gateway.outbox import Outbox

__all__ = ["SUBPROTOCOL", "handle"]

log = logging.getLogger(__name__)

#: The subprotocol the server answers when a client offers it.
SUBPROTOCOL = "hotplex.v1"
#: How long a graceful close waits for the client's answer.
CLOSE_TIMEOUT = 5.0
#: How long closing a client that stopped reading may take before the socket is dropped.
STUCK_CLOSE_TIMEOUT = 1.0
FRAME_TYPES = ("execute", "interrupt", "permission_response", "subscribe", "ping")

Frame = dict[str, Any]
FrameHandler = Callable[[Frame, "str | None"], Awaitable[None]]


async def handle(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    settings = gateway.settings
    offered = request.headers.get("Sec-WebSocket-Protocol")
    if offered is not None and SUBPROTOCOL not in (p.strip() for p in offered.split(",")):
        # refuse here: aiohttp would log the offer, and with it a key offered as a protocol
        raise web.HTTPBadRequest(text=f"Offer the subprotocol {SUBPROTOCOL}.")
    ws = web.WebSocketResponse(
        protocols=(SUBPROTOCOL,),
        max_msg_size=settings.max_frame_bytes,
        heartbeat=settings.ws_heartbeat or None,
        timeout=CLOSE_TIMEOUT,
    )
    await ws.prepare(request)
    await Connection(gateway, request[CALLER], ws, request).run()
    return ws


class _Receiver:
    """One session's events on this connection (see :class:`~.follow.Receiver`)."""

    def __init__(
        self, conn: Connection, client_id: str, *, via_turn: bool, request_id: str | None = None
    ) -> None:
        self.conn = conn
        self.client_id = client_id
        self.via_turn = via_turn
        self.request_id = request_id

    def offer(self, event: AgentEvent) -> bool:
        if self.via_turn and self.client_id in self.conn.subscriptions:
            return True  # the subscription relays this session's events
        return self.conn.deliver(self.client_id, event)

    async def put(self, event: AgentEvent) -> bool:
        return await self.conn.deliver_wait(self.client_id, event)

    def error(self, code: str, message: str, *, retryable: bool = False) -> None:
        self.conn.send(error_frame(code, message, retryable=retryable, request_id=self.request_id))


class Connection:
    def __init__(
        self, gateway: Gateway, caller: Caller, ws: web.WebSocketResponse, request: web.Request
    ) -> None:
        self.gateway = gateway
        self.caller = caller
        self.ws = ws
        self.request = request
        self.outbox = Outbox(
            gateway.settings.client_queue,
            on_overflow=self._stuck,
            put_timeout=REPLAY_PUT_TIMEOUT,
        )
        self.tasks: set[asyncio.Task[None]] = set()
        self.executes = Executes(gateway.settings.ws_max_executes, self._spawn)
        self.subscriptions: dict[str, asyncio.Task[None]] = {}
        #: per client session id: turns this connection relays, and the events of a
        #: WAF-asked prompt held until those relays have sent what came before them
        self.turn_relays: dict[str, int] = {}
        self.held: dict[str, list[AgentEvent]] = {}
        #: the highest seq sent per client session id: nothing is sent twice
        self.sent: dict[str, int] = {}
        self._writer: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self._handlers: dict[str, FrameHandler] = {
            "execute": self._execute,
            "interrupt": self._interrupt,
            "permission_response": self._permission,
            "subscribe": self._subscribe,
            "ping": self._ping,
        }

    # -- the connection's life ---------------------------------------------------------

    async def run(self) -> None:
        self._writer = asyncio.create_task(self._write(), name="ws-writer")
        forget = self.gateway.track(self._going_away)
        try:
            async for message in self.ws:
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await self._receive(message.data)  # JSON either way
                else:  # ERROR: aiohttp closed the socket (1009 for a frame too big)
                    break
        finally:
            forget()
            await cancel_and_wait(*self.tasks)
            await cancel_and_wait(self._writer)
            if self._closing is not None:
                await self._closing

    async def _write(self) -> None:
        try:
            while (frame := await self.outbox.get()) is not None:
                await self.ws.send_str(frame)
        except (ConnectionError, RuntimeError):
            pass  # the socket is gone; the reader sees it too

    def _stuck(self) -> None:
        self.gateway.slow_disconnects += 1
        log.warning(
            "closing the WebSocket of %r: it stopped reading (%d frames queued)",
            self.caller.name,
            self.gateway.settings.client_queue,
        )
        self.close(WSCloseCode.POLICY_VIOLATION, b"too slow: send queue full", stuck=True)

    def close(self, code: int, message: bytes, *, stuck: bool = False) -> asyncio.Task[None]:
        if self._closing is None:
            self._closing = asyncio.create_task(self._close(code, message, stuck))
        return self._closing

    async def _close(self, code: int, message: bytes, stuck: bool) -> None:
        self.outbox.close()
        await cancel_and_wait(self._writer)
        try:
            await asyncio.wait_for(
                self.ws.close(code=code, message=message),
                STUCK_CLOSE_TIMEOUT if stuck else CLOSE_TIMEOUT,
            )
        except (TimeoutError, ConnectionError):
            stuck = True
        transport = self.request.transport
        if stuck and transport is not None:
            transport.abort()  # a peer that reads nothing would keep the socket open

    async def _going_away(self) -> None:
        await self.close(WSCloseCode.GOING_AWAY, b"server shutting down")

    # -- sending -----------------------------------------------------------------------

    def send(self, frame: Frame) -> None:
        self.outbox.offer(dumps(frame))

    def _fresh(self, client_id: str, event: AgentEvent) -> bool:
        if event.seq <= self.sent.get(client_id, 0):
            return False
        self.sent[client_id] = event.seq
        return True

    def deliver(self, client_id: str, event: AgentEvent) -> bool:
        if not self._fresh(client_id, event):
            return not self.outbox.closed
        return self.outbox.offer(dumps(event_frame(event, client_id)))

    async def deliver_wait(self, client_id: str, event: AgentEvent) -> bool:
        if not self._fresh(client_id, event):
            return not self.outbox.closed
        return await self.outbox.put(dumps(event_frame(event, client_id)))

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # -- receiving ---------------------------------------------------------------------

    async def _receive(self, text: str | bytes) -> None:
        limited = self.gateway.frames.take(self.caller.name)
        try:
            frame = parse_object(text)
        except GatewayError as error:
            self.send((limited or error).frame())
            return
        request_id = request_id_of(frame)
        if limited is not None:
            self.send(limited.frame(request_id))
            return
        kind = frame.get("type")
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            message = f"Unknown or missing 'type'; expected one of {', '.join(FRAME_TYPES)}."
            self.send(error_frame("unknown_type", message, request_id=request_id))
            return
        try:
            await handler(frame, request_id)
        except GatewayError as error:
            self.send(error.frame(request_id))
        except Exception:
            log.exception("WebSocket frame %r of %r failed", kind, self.caller.name)
            message = "Internal error; see the service log."
            self.send(error_frame("internal_error", message, request_id=request_id))

    async def _ping(self, frame: Frame, request_id: str | None) -> None:
        self.send({"type": "pong", **({"request_id": request_id} if request_id else {})})

    async def _execute(self, frame: Frame, request_id: str | None) -> None:
        request = ExecuteRequest.parse(frame)
        client_id = request.session_id or new_session_id()

        async def work(park: Park) -> None:
            def on_event(event: AgentEvent) -> None:  # a WAF-asked prompt's request, or
                # a chat command's answer (a message event)
                self._aside(client_id, event)
                if event.type == "permission_request":
                    park()

            try:
                turn = await self.gateway.execute(
                    self.caller, client_id, request.prompt, request.request_id, on_event=on_event
                )
            except GatewayError as error:
                self.send(error.frame(request_id))
                return
            except Exception:
                log.exception("an execute of %r failed", self.caller.name)
                message = "Internal error; see the service log."
                self.send(error_frame("internal_error", message, request_id=request_id))
                return
            if turn is not None:  # None: a chat command answered, through on_event
                self._spawn(self._relay_turn(turn, client_id), f"ws-turn:{client_id}")

        await self.executes.start(client_id, work)

    def _aside(self, client_id: str, event: AgentEvent) -> None:
        """Send an event of a WAF-asked prompt (outside any turn) in ``seq`` order: a turn
        of the session this connection relays may still have earlier events queued, so
        then the relay sends it in its place (see ``_relay_turn``)."""
        if client_id in self.subscriptions:
            return  # the subscription sends it
        if self.turn_relays.get(client_id) and self.sent.get(client_id, 0) < event.seq - 1:
            self.held.setdefault(client_id, []).append(event)
        else:
            self.deliver(client_id, event)

    def _release(self, client_id: str, below: int | None = None) -> None:
        """Send the held events with a ``seq`` under ``below`` (all, for None)."""
        held = self.held.get(client_id)
        while held and (below is None or held[0].seq < below):
            self.deliver(client_id, held.pop(0))
        if not held:
            self.held.pop(client_id, None)

    async def _relay_turn(self, turn: Turn, client_id: str) -> None:
        receiver = _Receiver(self, client_id, via_turn=True)
        self.turn_relays[client_id] = self.turn_relays.get(client_id, 0) + 1
        try:
            async for event in turn:
                self._release(client_id, below=event.seq)
                if not receiver.offer(event):
                    return
                await asyncio.sleep(0)  # let the client's writer take its turn
        finally:
            self.turn_relays[client_id] -= 1
            if not self.turn_relays[client_id]:
                del self.turn_relays[client_id]
            self._release(client_id)  # what the turn had before them is sent

    async def _interrupt(self, frame: Frame, request_id: str | None) -> None:
        await self.gateway.interrupt(self.caller, required_session_id(frame))

    async def _permission(self, frame: Frame, request_id: str | None) -> None:
        permission_id = optional_str(frame, "permission_id", limit=256)
        if permission_id is None:
            raise GatewayError("invalid_request", "'permission_id' is required.")
        await self.gateway.decide(self.caller, permission_id, DecisionRequest.parse(frame))

    async def _subscribe(self, frame: Frame, request_id: str | None) -> None:
        client_id = required_session_id(frame)
        since = since_seq(frame.get("since_seq"))
        _, follow = await self.gateway.follow(self.caller, client_id, since)
        previous = self.subscriptions.pop(client_id, None)
        await cancel_and_wait(previous)
        self.sent[client_id] = since
        receiver = _Receiver(self, client_id, via_turn=False, request_id=request_id)
        report = "since_seq" in frame
        task = self._spawn(
            self._relay_subscription(follow, receiver, report), f"ws-subscription:{client_id}"
        )
        task.add_done_callback(lambda _: follow.close())  # also when it never ran
        self.subscriptions[client_id] = task

    async def _relay_subscription(self, follow: Follow, receiver: _Receiver, report: bool) -> None:
        try:
            await relay_follow(follow, receiver, until_turn_ends=False, report_unstored=report)
        except Exception:
            log.exception("subscription to %s failed", follow.session_id)
            message = "The subscription failed; subscribe again."
            receiver.error("internal_error", message, retryable=True)
        finally:
            if self.subscriptions.get(receiver.client_id) is asyncio.current_task():
                del self.subscriptions[receiver.client_id]
