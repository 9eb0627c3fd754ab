"""The receiving side: the ``relay`` chat adapter and its route ``POST /relay/v1/ask``.

A verified request (signature, replay window, nonce; see :mod:`hotplex_relay.signing`)
that passes the peer's rate limit and the loop guard becomes one more inbound message of
the platform ``relay``, handed to core's chat bridge like any adapter's: the middleware
chain (dedup, access, the WAF, plugin middleware), chat commands, the session, the turn.
Its conversation is ``relay:<peer>/<digest of the asking conversation>``, so one asking
conversation always reaches the same hot session. The turn runs under the peer's
``policy`` (the ``unattended`` fact: nobody waits for an approver who is not there) and
its events stream back on the response (:mod:`hotplex_relay.wire`).

``POST /relay/v1/mirror`` posts a peer's bound conversation's message into ours, when we
hold that binding too (:meth:`RelayAdapter.mirror`).

Anything wrong before the turn is an HTTP error with nothing run: 401 for an unsigned,
forged, expired or replayed request or an unknown peer, 400 for a malformed body, 429
past the peer's rate limit, 409 for a request the loop guard drops (audited as
``relay.dropped``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel

from hotplex import Address, HotplexError
from hotplex.address import AddressLike
from hotplex.context import PluginContext
from hotplex.errors import AddressError
from hotplex.interfaces import ChatAdapter, MessageOperations
from hotplex.records import RouteSpec
from hotplex.types import ApprovalRequest, ChatCapabilities, IncomingMessage, MessageRef
from hotplex_relay.guard import Hop, chain_problem, parse_chain
from hotplex_relay.signing import ASK_ROUTE, MIRROR_ROUTE, Rejected, StreamMac, Verified, verify
from hotplex_relay.wire import encode, forwarded

if TYPE_CHECKING:
    from hotplex.chat import Handled
    from hotplex_relay.service import RelayService

__all__ = ["RelayAdapter", "conversation_for", "make_adapter"]

log = logging.getLogger(__name__)

PLATFORM = "relay"
_MAX_BODY = 1 << 20


def conversation_for(sender: str, asking: str) -> str:
    """The conversation on this instance of a peer's asking conversation."""
    digest = hashlib.sha256(f"{sender}\n{asking}".encode()).hexdigest()[:24]
    return str(Address(PLATFORM, sender, digest))


class RelayOperations(MessageOperations):
    """Where core would write into a ``relay:`` conversation. The answer goes back on the
    request's own stream, so there is nothing to write to: a write (a turn recovered after
    a restart, whose asker is gone) is logged and dropped. An approval for a ``relay:``
    conversation only exists without the peer's policy (a turn recovered after a restart:
    the engine keeps policies in memory); nobody here can answer it, so it is denied at
    once rather than left waiting for its timeout."""

    capabilities = ChatCapabilities(streaming="send", min_update_interval=0.0)

    def __init__(self, ctx: PluginContext) -> None:
        self._ctx = ctx
        self._tasks: set[asyncio.Task[None]] = set()

    async def send(self, address: AddressLike, text: str) -> MessageRef:
        log.info("a message for %s has no asker waiting; dropped", address)
        return MessageRef(str(address), "dropped")

    async def update(self, ref: MessageRef, text: str) -> None:
        return None

    async def delete(self, ref: MessageRef) -> None:
        return None

    async def ask_approval(self, request: ApprovalRequest) -> MessageRef:
        log.warning(
            "approval %s for %s: nobody to ask; denied", request.permission_id, request.address
        )
        task = asyncio.create_task(self._deny(request.permission_id))  # once it is shown
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return MessageRef(request.address or "", "none")

    async def _deny(self, permission_id: str) -> None:
        from hotplex.engine import ENGINE
        from hotplex.identity import ADMIN

        engine = self._ctx.services.find(ENGINE)
        if engine is None:
            return
        with contextlib.suppress(HotplexError, KeyError):
            await engine.approvals.decide(
                permission_id, "deny", by=ADMIN,
                reason="nobody can approve this here: the peer that asked is not waiting",
            )  # fmt: skip

    async def upload_file(self, address: AddressLike, path: Path, title: str = "") -> MessageRef:
        return await self.send(address, title)


class RelayAdapter(ChatAdapter):
    name = "relay"
    platform = PLATFORM

    def __init__(self, ctx: PluginContext, service: RelayService) -> None:
        self._ctx = ctx
        self._service = service
        self._operations = RelayOperations(ctx)
        self._running = False

    @property
    def operations(self) -> RelayOperations:
        return self._operations

    def state(self) -> str:
        return "connected" if self._running else "connecting"

    async def run(self, deliver: Callable[[IncomingMessage], Awaitable[None]]) -> None:
        self._running = True
        try:
            await asyncio.Event().wait()  # requests arrive on http_routes, until cancelled
        finally:
            self._running = False

    def http_routes(self) -> list[RouteSpec]:
        return [
            RouteSpec("POST", ASK_ROUTE, self.ask, name="relay-ask", auth="none"),
            RouteSpec("POST", MIRROR_ROUTE, self.mirror, name="relay-mirror", auth="none"),
        ]

    async def _verified(self, request: web.Request, route: str) -> tuple[Verified, bytes]:
        """The request's signed sender and body; raises the HTTP error to answer."""
        body = bytearray()
        async for chunk in request.content.iter_chunked(1 << 16):
            body += chunk
            if len(body) > _MAX_BODY:
                raise _Refused(413, "the request body is larger than 1 MiB")
        service = self._service
        try:
            verified = verify(
                request.headers, method=request.method, path=route, body=bytes(body),
                secret_for=service.secret_for, nonces=service.nonces,
            )  # fmt: skip
        except Rejected as exc:
            log.warning("relay request from %s refused: %s", request.remote, exc)
            raise _Refused(401, "not authenticated") from None
        wait = service.inbound_limit(verified.sender)
        if wait:
            raise _Refused(
                429, f"too many requests from {verified.sender}; try again in {wait:.1f} s"
            )
        return verified, bytes(body)

    # -- a binding's message from a peer -------------------------------------------------

    async def mirror(self, request: web.Request) -> web.StreamResponse:
        """Post a peer's mirrored message into one of our conversations, when we hold the
        binding too (our side consents to what is posted here)."""
        from hotplex.chat import DELIVERY

        try:
            verified, body = await self._verified(request, MIRROR_ROUTE)
            conversation, text, origin = _parse_mirror(body)
        except _Refused as exc:
            return _error(exc.status, exc.message)
        sender = verified.sender
        if not self._service.bindings.bound(conversation, f"{sender}@{origin}"):
            return _error(403, f"{conversation} is not bound to {sender}@{origin} here")
        try:
            await self._ctx.services.get(DELIVERY).send(conversation, text)
        except HotplexError as exc:
            return _error(502, f"could not post into {conversation}: {exc}")
        return web.json_response({"ok": True})

    # -- one request ---------------------------------------------------------------------

    async def ask(self, request: web.Request) -> web.StreamResponse:
        service = self._service
        try:
            verified, body = await self._verified(request, ASK_ROUTE)
        except _Refused as exc:
            return _error(exc.status, exc.message)
        sender = verified.sender
        try:
            prompt, chain = _parse(body, sender)
        except ValueError as exc:
            return _error(400, str(exc))
        problem = chain_problem(chain, target=service.name, hop_limit=service.settings.hop_limit)
        if problem is not None:
            await service.dropped(problem, chain, to=service.name, side="receiver", actor=sender)
            return _error(409, problem)
        return await self._answer(request, verified.nonce, sender, prompt, chain)

    async def _answer(
        self, request: web.Request, nonce: str, sender: str, prompt: str, chain: tuple[Hop, ...]
    ) -> web.StreamResponse:
        from hotplex.chat import CHAT_BRIDGE

        service = self._service
        address = conversation_for(sender, chain[-1].conversation)
        service.remember_chain(address, chain)
        message = IncomingMessage(
            address=address, text=prompt, user=f"relay:{sender}", platform=PLATFORM,
            event_id=f"relay-{nonce}", message_key=f"relay:{sender}:{nonce}",
            direct=True, display_name=sender,
        )  # fmt: skip
        peer = service.settings.peer(sender)
        assert peer is not None  # verify() found its secret
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        out = _Out(response, StreamMac(peer.secret.get_secret_value().encode(), nonce))
        await out.line({"type": "accepted", "conversation": address})
        bridge = self._ctx.services.get(CHAT_BRIDGE)
        handling = asyncio.ensure_future(
            bridge.handle(
                self, message, render=False, facts={"unattended": peer.policy},
                settle_pending=False,
            )
        )  # fmt: skip
        try:
            handled = await out.beating(handling, service.settings.heartbeat)
        except (ConnectionResetError, asyncio.CancelledError):
            handling.cancel()
            raise
        except Exception as exc:  # the bridge could not take it (stopping, a failure)
            log.exception("a relayed message from %s failed", sender)
            await out.end("refused", f"{type(exc).__name__}: {exc}")
            return response
        await self._stream(out, handled, service.settings.heartbeat)
        return response

    async def _stream(self, out: _Out, handled: Handled, heartbeat: float) -> None:
        if handled.turn is None and handled.outcome == "answered" and handled.reply:
            await out.line(
                {"type": "event", "event": {"type": "text", "data": {"text": handled.reply}}}
            )
            await out.end("ok")
            return
        if handled.turn is None:
            reason = handled.reply or f"the message was {handled.outcome}"
            await out.end("refused", reason)
            return
        events: asyncio.Queue[Any] = asyncio.Queue()

        async def pump() -> None:
            assert handled.turn is not None
            async for event in handled.turn:
                events.put_nowait(event)
                if event.type == "done":
                    break
            events.put_nowait(None)

        reader = asyncio.create_task(pump())
        status = "error"
        try:
            while True:
                try:
                    event = await asyncio.wait_for(events.get(), heartbeat)
                except TimeoutError:
                    await out.line({"type": "heartbeat"})
                    continue
                if event is None:
                    break
                line = forwarded(event)
                if line is not None:
                    await out.line(line)
                if event.type == "done":
                    status = str(event.data.get("status", "error"))
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        await out.end(status)


class _Out:
    """The response's lines, each added to the answer's MAC."""

    def __init__(self, response: web.StreamResponse, mac: StreamMac) -> None:
        self._response = response
        self._mac = mac

    async def line(self, obj: dict[str, Any]) -> None:
        data = encode(obj)
        self._mac.update(data)
        await self._response.write(data)

    async def end(self, status: str, reason: str | None = None) -> None:
        last: dict[str, Any] = {"type": "end", "status": status, "mac": self._mac.hexdigest()}
        if reason:
            last["reason"] = reason
        await self._response.write(encode(last))
        await self._response.write_eof()

    async def beating(self, task: asyncio.Future[Handled], heartbeat: float) -> Handled:
        """``task``'s result, with a heartbeat line every ``heartbeat`` seconds meanwhile
        (a prompt the WAF routed to a person may wait long)."""
        while True:
            done, _ = await asyncio.wait({task}, timeout=heartbeat)
            if done:
                return task.result()
            await self.line({"type": "heartbeat"})


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _parse_mirror(body: bytes) -> tuple[str, str, str]:
    """(our conversation, the text, the peer's bound conversation) of a mirror body."""
    try:
        data = json.loads(body)
    except ValueError:
        raise _Refused(400, "the body is not JSON") from None
    fields = [
        data.get(k) if isinstance(data, dict) else None for k in ("conversation", "text", "from")
    ]
    if not all(isinstance(f, str) and f for f in fields):
        raise _Refused(400, "conversation, text and from must be non-empty strings")
    conversation, text, origin = (str(f) for f in fields)
    try:
        conversation, origin = str(Address.parse(conversation)), str(Address.parse(origin))
    except AddressError as exc:
        raise _Refused(400, f"not a conversation address: {exc}") from None
    return conversation, text, origin


def _parse(body: bytes, sender: str) -> tuple[str, tuple[Hop, ...]]:
    try:
        data = json.loads(body)
    except ValueError:
        raise ValueError("the body is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("prompt must be a non-empty string")
    chain = parse_chain(data.get("chain"))
    if data.get("hops") != len(chain):
        raise ValueError("hops must count the hops of chain")
    if chain[-1].peer != sender:
        raise ValueError(f"the chain's last hop must be the sender {sender!r}")
    return prompt, chain


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def make_adapter(ctx: PluginContext, config: BaseModel) -> ChatAdapter:
    from hotplex_relay.service import RELAY

    return RelayAdapter(ctx, ctx.services.get(RELAY))
