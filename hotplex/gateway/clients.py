"""The client gateway's shared logic: who is calling, which session they mean, and what
they may do with it. The WebSocket (``ws.py``) and HTTP/SSE (``sse.py``, ``api.py``)
handlers are thin layers over :class:`Gateway`.

A client names its sessions with its own ids; the engine's session key is the address
``web:<api key name>/<client session id>``. The key name in the address is what makes a
session belong to its key: another key naming the same id reaches another session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from hotplex.chat import CHAT_BRIDGE, ChatBridge
from hotplex.config import UnattendedPolicy
from hotplex.engine import ENGINE, Engine, Turn
from hotplex.engine.approvals import ADMIN, Decision
from hotplex.engine.session import Session
from hotplex.errors import (
    AlreadyDecidedError,
    ApprovalError,
    HotplexError,
    NotAuthorizedError,
)
from hotplex.events import AgentEvent
from hotplex.gateway.adapter import GatewayAdapter
from hotplex.gateway.follow import Follow, open_follow
from hotplex.gateway.frames import DecisionRequest, GatewayError
from hotplex.gateway.ratelimit import KeyLimit
from hotplex.interfaces import Storage
from hotplex.runtime import Runtime
from hotplex.services import STORAGE
from hotplex.storage.sink import STORAGE_SINK
from hotplex.types import IncomingMessage

__all__ = ["CALLER", "GATEWAY_KEY", "Caller", "Gateway", "Target"]

log = logging.getLogger(__name__)

#: How long a replay waits for room in a client's queue before the client counts as stuck.
REPLAY_PUT_TIMEOUT = 30.0
#: How long shutting down waits for the open connections to close.
SHUTDOWN_TIMEOUT = 5.0

Closer = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: the API key name (``local`` for loopback without keys,
    ``admin`` for the admin token), and whether it may act on every session."""

    name: str
    admin: bool


@dataclass(frozen=True, slots=True)
class Target:
    """A session a request refers to: the id the client used and the engine's id."""

    client_id: str
    session_id: str
    session: Session | None


class Gateway:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings.server
        limits = self.settings.rate_limit
        on = limits.enabled
        #: every HTTP request and WebSocket handshake of a key
        self.requests = KeyLimit(
            "server.rate_limit.requests",
            "HTTP requests and WebSocket connection attempts",
            per_minute=limits.requests.per_minute if on else 0,
            burst=limits.requests.burst,
        )
        #: every WebSocket frame of a key, over all its sockets
        self.frames = KeyLimit(
            "server.rate_limit.frames",
            "WebSocket frames",
            per_minute=limits.frames.per_minute if on else 0,
            burst=limits.frames.burst,
        )
        self.slow_disconnects = 0
        #: the gateway as the dispatcher's adapter for platform ``web`` (see adapter.py)
        self.adapter = GatewayAdapter()
        self._closers: set[Closer] = set()

    # -- services ----------------------------------------------------------------------

    def engine(self) -> Engine:
        engine = self.runtime.ctx.services.find(ENGINE)
        if engine is None:
            raise GatewayError(
                "unavailable", "The engine is not running.", status=503, retryable=True
            )
        return engine

    def storage(self) -> Storage | None:
        return self.runtime.ctx.services.find(STORAGE)

    # -- sessions ----------------------------------------------------------------------

    @staticmethod
    def address(caller: Caller, client_id: str) -> str:
        return f"web:{caller.name}/{client_id}"

    @staticmethod
    def owns(caller: Caller, session: Session) -> bool:
        return (session.address or "").startswith(f"web:{caller.name}/")

    def own(self, caller: Caller, client_id: str) -> Target:
        """The caller's own session named ``client_id`` (it may not exist yet)."""
        engine = self.engine()
        session_id = engine.session_id(self.address(caller, client_id))
        return Target(client_id, session_id, engine.get(session_id))

    def resolve(self, caller: Caller, ref: str) -> Target:
        """A live session by the caller's id for it or by its engine id (an admin's way to
        reach another key's session); 404 unknown, 403 not the caller's."""
        target = self.own(caller, ref)
        if target.session is not None:
            return target
        session = self.engine().get(ref)
        if session is None:
            raise GatewayError("unknown_session", f"No session {ref!r}.", status=404)
        if not (caller.admin or self.owns(caller, session)):
            raise GatewayError(
                "not_authorized", "This session belongs to another API key.", status=403
            )
        return Target(ref, session.session_id, session)

    # -- actions -----------------------------------------------------------------------

    async def execute(
        self,
        caller: Caller,
        client_id: str,
        prompt: str,
        request_id: str | None,
        *,
        on_event: Callable[[AgentEvent], object] | None = None,
        policy: UnattendedPolicy | None = None,
    ) -> Turn | None:
        """Pass the prompt through the dispatcher (:meth:`hotplex.chat.ChatBridge.handle`:
        the inbound middleware chain, chat commands, then the engine) and return its turn,
        which the caller relays; None when a chat command answered it (the answer is a
        ``message`` event on the session's stream, also given to ``on_event``).

        This waits while a person decides a WAF-asked prompt: ``on_event`` gets the
        ``permission_request`` (and its ``permission_decision``) at once, so the caller
        can show it; ``policy`` makes the session unattended (the prompt ask and the tool
        calls follow it, and nobody is waited for)."""
        engine = self.engine()
        address = self.address(caller, client_id)
        message = self.message(caller, address, prompt)
        facts = {"request_id": request_id, "on_event": on_event, "unattended": policy}
        try:
            handled = await self.bridge().handle(
                self.adapter, message, render=False, facts=facts, settle_pending=False
            )
        except HotplexError as exc:
            raise GatewayError("unavailable", str(exc), status=503, retryable=True) from None
        if handled.turn is not None:
            return handled.turn
        if handled.outcome == "busy":
            reply = handled.reply or "A turn is already running."
            raise GatewayError("session_busy", reply, status=409, retryable=True)
        if handled.outcome == "answered" and handled.reply:
            answer = AgentEvent(type="message", data={"text": handled.reply, "from": "hotplex"})
            event = await engine.post(
                address, answer, address=address, user=message.user, request_id=request_id
            )
            if on_event is not None:
                on_event(event)
            return None
        raise GatewayError("refused", handled.reply or "The message was not accepted.", status=403)

    @staticmethod
    def message(caller: Caller, address: str, text: str) -> IncomingMessage:
        """A client's prompt as the dispatcher sees it: platform ``web``, user
        ``key:<api key name>``, a direct conversation."""
        return IncomingMessage(
            address=address, text=text, user=f"key:{caller.name}", platform="web", direct=True
        )

    def bridge(self) -> ChatBridge:
        bridge = self.runtime.ctx.services.find(CHAT_BRIDGE)
        if bridge is None:
            raise GatewayError(
                "unavailable", "The chat bridge is not running.", status=503, retryable=True
            )
        return bridge

    async def replay(self, message: IncomingMessage) -> None:
        """Run a stored prompt a crash left unaccepted (no client waits for it; its events
        are stored, so the client sees them when it subscribes)."""
        await self.bridge().handle(self.adapter, message, replay=True, render=False)

    async def interrupt(self, caller: Caller, ref: str) -> tuple[Target, bool]:
        """Interrupt the session's running turn and withdraw (deny) its prompts that wait
        for an approval; whether there was anything to stop."""
        target = self.resolve(caller, ref)
        engine = self.engine()
        withdrawn = False
        for request in engine.approvals.pending(target.session_id):
            if request.kind == "prompt":
                with contextlib.suppress(HotplexError, KeyError):
                    await engine.approvals.decide(
                        request.permission_id, "deny", by=ADMIN, reason="interrupted"
                    )
                    withdrawn = True
        return target, await engine.interrupt(target.session_id) or withdrawn

    async def decide(
        self, caller: Caller, permission_id: str, request: DecisionRequest
    ) -> Decision:
        """Answer a permission request of one of the caller's sessions (any, for an admin).
        The key decides as ``key:<name>`` (its identity on the dispatcher's path; a request
        of a session made before that names the bare key name, which still decides it); an
        admin deciding another's uses ``admin``."""
        approvals = self.engine().approvals
        pending = approvals.get(permission_id)
        by = f"key:{caller.name}"
        if pending is not None:
            session = self.engine().get(pending.session_id)
            mine = session is not None and self.owns(caller, session)
            if mine and not approvals.may_decide(pending, by):
                by = caller.name if approvals.may_decide(pending, caller.name) else by
            if not (mine and approvals.may_decide(pending, by)):
                if not caller.admin:
                    raise GatewayError(
                        "not_authorized", "You may not decide this request.", status=403
                    )
                by = ADMIN
        try:
            return await approvals.decide(
                permission_id, request.decision, by=by, scope=request.scope, reason=request.reason
            )
        except KeyError:
            raise GatewayError(
                "unknown_permission", f"No permission request {permission_id!r}.", status=404
            ) from None
        except NotAuthorizedError as exc:
            raise GatewayError("not_authorized", str(exc), status=403) from None
        except AlreadyDecidedError as exc:
            raise GatewayError("already_decided", str(exc), status=409) from None
        except ApprovalError as exc:
            raise GatewayError("invalid_request", str(exc)) from None

    async def follow(self, caller: Caller, client_id: str, since: int) -> tuple[Target, Follow]:
        """Start following one of the caller's sessions (stored events, then live)."""
        target = self.own(caller, client_id)
        follow = await open_follow(
            self.engine(),
            self.storage(),
            target.session_id,
            since,
            self.settings.client_queue,
            self.runtime.ctx.services.find(STORAGE_SINK),
        )
        if follow is None:
            raise GatewayError("unknown_session", f"No session {client_id!r}.", status=404)
        return target, follow

    # -- connections -------------------------------------------------------------------

    @property
    def open_connections(self) -> int:
        """WebSockets and SSE streams open now."""
        return len(self._closers)

    def track(self, closer: Closer) -> Callable[[], None]:
        """Remember how to close a connection at shutdown; returns the way to forget it."""
        self._closers.add(closer)
        return lambda: self._closers.discard(closer)

    async def shutdown(self, app: web.Application) -> None:
        """Close every client connection (``on_shutdown``): turns go on, clients resume."""
        closers = list(self._closers)
        if not closers:
            return
        done, pending = await asyncio.wait(
            [asyncio.ensure_future(closer()) for closer in closers], timeout=SHUTDOWN_TIMEOUT
        )
        for task in pending:
            task.cancel()
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.warning("closing a client failed: %r", task.exception())


GATEWAY_KEY = web.AppKey("gateway", Gateway)
#: The caller of a request that passed the gateway's guard.
CALLER = web.RequestKey("hotplex_caller", Caller)
