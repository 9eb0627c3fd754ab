"""``POST /api/v1/execute``: a turn's AgentEvents as a ``text/event-stream``.

Each event is ``id: <seq>``, ``event: <type>``, ``data: <AgentEvent JSON>``; an idle stream
gets a ``: ping`` comment every ``server.sse_heartbeat``; the stream ends after ``done``.
With a ``Last-Event-ID`` header (and the body's ``session_id``) the POST starts no turn: it
replays the stored events after that seq and follows the running turn to its ``done``.
A client that goes away stops only its stream: the turn goes on and is stored.

A prompt the WAF asks about starts the stream at once with its ``permission_request``; the
stream then carries the ``permission_decision`` and the turn, or an ``error`` event when
the prompt is refused. A client that goes away before the decision withdraws the prompt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from hotplex.aio import cancel_and_wait
from hotplex.engine import Turn
from hotplex.events import AgentEvent
from hotplex.gateway.api import read_body
from hotplex.gateway.clients import CALLER, GATEWAY_KEY, REPLAY_PUT_TIMEOUT, Gateway
from hotplex.gateway.follow import Receiver, relay_follow, relay_turn
from hotplex.gateway.frames import (
    ExecuteRequest,
    GatewayError,
    dumps,
    error_frame,
    event_frame,
    new_session_id,
    required_session_id,
    since_seq,
)
from hotplex.gateway.outbox import Outbox
from hotplex.gateway.security import error_response

__all__ = ["execute"]

log = logging.getLogger(__name__)

HEARTBEAT = b": ping\n\n"

Relay = Callable[[Receiver], Awaitable[None]]


async def execute(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    caller = request[CALLER]
    try:
        body = await read_body(request, gateway.settings.max_body_bytes)
        last_event_id = request.headers.get("Last-Event-ID")
        if last_event_id is not None:
            client_id = required_session_id(body)
            since = since_seq(last_event_id.strip(), "Last-Event-ID")
            _, follow = await gateway.follow(caller, client_id, since)

            async def resume(receiver: Receiver) -> None:
                await relay_follow(follow, receiver, until_turn_ends=True)

            return await SseStream(request, gateway, client_id).run(resume, follow.close)
        parsed = ExecuteRequest.parse(body)
        client_id = parsed.session_id or new_session_id()
    except GatewayError as error:
        return error_response(error)
    stream = SseStream(request, gateway, client_id)
    asked = asyncio.Event()

    def on_event(event: AgentEvent) -> None:  # a WAF-asked prompt's request and decision,
        # or a chat command's answer
        stream.offer(event)
        asked.set()

    starting = asyncio.create_task(
        gateway.execute(caller, client_id, parsed.prompt, parsed.request_id, on_event=on_event),
        name=f"sse-execute:{client_id}",
    )
    try:
        await _first(starting, asked)
    except BaseException:
        await cancel_and_wait(starting)
        raise
    if not asked.is_set():  # accepted or refused at once: a turn's stream or an error
        try:
            turn = starting.result()
        except GatewayError as error:
            return error_response(error)

        async def forward(receiver: Receiver) -> None:
            if turn is not None:  # None: a chat command's answer, sent through on_event
                await relay_turn(turn, receiver)

        return await stream.run(forward)

    async def decided(receiver: Receiver) -> None:  # the request is already queued
        try:
            turn = await starting
        except GatewayError as error:
            receiver.error(error.code, error.message, retryable=error.retryable)
            return
        if turn is not None:  # None: a chat command answered (its message event was sent)
            await relay_turn(turn, receiver)

    def withdraw() -> None:
        starting.cancel()

    return await stream.run(decided, withdraw)


async def _first(task: asyncio.Task[Turn | None], event: asyncio.Event) -> None:
    """Wait until the task ends or the event is set."""
    waiter = asyncio.create_task(event.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()


class SseStream:
    """One SSE response: a relay task fills the bounded outbox, this handler writes it."""

    def __init__(self, request: web.Request, gateway: Gateway, client_id: str) -> None:
        self.request = request
        self.gateway = gateway
        self.client_id = client_id
        self.outbox = Outbox(
            gateway.settings.client_queue, on_overflow=self._stuck, put_timeout=REPLAY_PUT_TIMEOUT
        )
        self._pump: asyncio.Task[None] | None = None

    # -- the Receiver side -------------------------------------------------------------

    def _format(self, event: AgentEvent) -> str:
        data = dumps(event_frame(event, self.client_id))
        return f"id: {event.seq}\nevent: {event.type}\ndata: {data}\n\n"

    def offer(self, event: AgentEvent) -> bool:
        return self.outbox.offer(self._format(event))

    async def put(self, event: AgentEvent) -> bool:
        return await self.outbox.put(self._format(event))

    def error(self, code: str, message: str, *, retryable: bool = False) -> None:
        data = dumps(error_frame(code, message, retryable=retryable))
        self.outbox.offer(f"event: error\ndata: {data}\n\n")

    # -- the response ------------------------------------------------------------------

    async def run(
        self, relay: Relay, cleanup: Callable[[], None] | None = None
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
                "X-Session-Id": self.client_id,
            }
        )
        forget = self.gateway.track(self._going_away)
        heartbeat = self.gateway.settings.sse_heartbeat
        try:
            await response.prepare(self.request)
            self._pump = asyncio.create_task(self._relay(relay), name=f"sse:{self.client_id}")
            while True:
                try:
                    frame = await self.outbox.get(heartbeat)
                except TimeoutError:
                    await response.write(HEARTBEAT)
                    continue
                if frame is None:
                    break
                await response.write(frame.encode())
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away; its turn goes on
        finally:
            forget()
            await cancel_and_wait(self._pump)
            if cleanup is not None:
                cleanup()
        return response

    async def _relay(self, relay: Relay) -> None:
        try:
            await relay(self)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the SSE stream of %s failed", self.client_id)
            message = "The stream failed; resume with Last-Event-ID."
            self.error("internal_error", message, retryable=True)
        finally:
            await self.outbox.put(None)

    def _stuck(self) -> None:
        self.gateway.slow_disconnects += 1
        log.warning("dropping the SSE stream of %s: the client stopped reading", self.client_id)
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def _going_away(self) -> None:
        await cancel_and_wait(self._pump)
