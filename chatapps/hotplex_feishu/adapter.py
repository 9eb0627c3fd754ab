"""The Feishu chat adapter: events in (long connection or webhook), cards out.

Both modes go through lark-oapi's ``EventDispatcherHandler`` on a thread that is not
HotPlex's loop (the long connection's own thread, or a worker thread for a webhook
request), so its handlers, which lark calls synchronously, can wait a little for HotPlex:
a message waits up to :data:`ACK_WAIT` for core to record it (so the dedup record is
durable before Feishu gets its ack, and a re-push is dropped), a card button up to
:data:`CARD_WAIT` for ``ChatBridge.decide`` (Feishu shows the answer's toast and card; it
allows 3 s). Nothing else of a turn runs before the ack.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import httpx
from aiohttp import web

from hotplex.address import Address, session_id_for
from hotplex.chat import CHAT_BRIDGE
from hotplex.context import PluginContext
from hotplex.errors import ApprovalError, NotAuthorizedError, RateLimitedError
from hotplex.interfaces import ChatAdapter, approval_outcome_text
from hotplex.records import RouteSpec
from hotplex.services import STORAGE
from hotplex.templating import TEMPLATES, make_environment
from hotplex.types import ApprovalOutcome, IncomingMessage
from hotplex_feishu.api import FeishuApi, FeishuApiError, FeishuAuthError
from hotplex_feishu.cards import TEMPLATE_SPEC, CardTemplates, feishu_escape
from hotplex_feishu.inbound import ThreadMemory, to_message
from hotplex_feishu.longconn import LongConnection
from hotplex_feishu.operations import FeishuOperations
from hotplex_feishu.settings import FeishuSettings
from hotplex_feishu.webhook import Rejected, WebhookGuard

__all__ = ["ACK_WAIT", "CARD_WAIT", "FeishuAdapter"]

log = logging.getLogger(__name__)

#: Seconds a message event waits for core to record the message before the ack.
ACK_WAIT = 1.5
#: Seconds a card button waits for the decision before answering with a plain toast.
CARD_WAIT = 2.5
_EVENTS = frozenset({"im.message.receive_v1", "card.action.trigger"})
_NOT_YOURS = "You may not decide this request: only its approvers can."


def _toast(kind: str, content: str) -> dict[str, Any]:
    return {"toast": {"type": kind, "content": content}}


class FeishuAdapter(ChatAdapter):
    name = "feishu"
    platform = "feishu"

    def __init__(self, ctx: PluginContext, settings: FeishuSettings) -> None:
        assert settings.app_id and settings.app_secret
        self._ctx = ctx
        self._settings = settings
        self.api = FeishuApi(
            settings.app_id,
            settings.app_secret.get_secret_value(),
            settings.domain,
            timeout=settings.request_timeout,
        )
        self._templates: CardTemplates | None = None
        self._operations = FeishuOperations(
            self.api, self.card_templates, min_update_interval=settings.min_update_interval
        )
        self._threads = ThreadMemory()
        self._guard = WebhookGuard(
            encrypt_key=_secret(settings.encrypt_key),
            verification_token=_secret(settings.verification_token),
            window=settings.timestamp_window,
        )
        self._state = "connecting"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deliver: Callable[[IncomingMessage], Awaitable[None]] | None = None
        self._dispatcher: Any = None
        self.bot_open_id: str | None = None
        self.connection: LongConnection | None = None

    @property
    def operations(self) -> FeishuOperations:
        return self._operations

    def state(self) -> str:
        return self._state

    def _set_state(self, state: str) -> None:
        self._state = state

    def card_templates(self) -> CardTemplates:
        if self._templates is None:
            env = self._ctx.services.find(TEMPLATES) or make_environment({"feishu": TEMPLATE_SPEC})
            self._templates = CardTemplates(env)
        return self._templates

    # -- running ----------------------------------------------------------------------------

    async def run(self, deliver: Callable[[IncomingMessage], Awaitable[None]]) -> None:
        try:
            await self._run(deliver)
        except Exception:
            self._state = "down"
            raise

    async def _run(self, deliver: Callable[[IncomingMessage], Awaitable[None]]) -> None:
        self._loop = asyncio.get_running_loop()
        self._deliver = deliver
        self.bot_open_id = await self._identify()
        webhook = self._settings.mode == "webhook"
        self._dispatcher = self._build_dispatcher(webhook=webhook)
        if webhook:
            self._state = "connected"
            await asyncio.Event().wait()  # the gateway serves the routes until cancelled
            return
        self.connection = LongConnection(
            app_id=self.api.app_id,
            app_secret=_secret(self._settings.app_secret) or "",
            domain=self.api.domain,
            handler=self._dispatcher,
            on_state=self._set_state,
        )
        self.connection.start()
        try:
            await self.connection.wait()
        finally:
            await self.connection.stop()

    async def _identify(self) -> str:
        """The bot's open_id. Refused credentials fail at once (clearly); Feishu being
        unreachable or busy is retried with a growing pause (at most 30 s)."""
        pause = 0.5
        while True:
            try:
                return await self.api.bot_open_id()
            except FeishuAuthError:
                raise
            except FeishuApiError as exc:
                if exc.status is None or exc.status < 500:
                    raise
                error: Exception = exc
            except (OSError, TimeoutError, RateLimitedError, httpx.HTTPError) as exc:
                error = exc
            log.warning("feishu: cannot reach %s (%s); retrying in %.1f s",
                        self.api.domain, error, pause)  # fmt: skip
            await asyncio.sleep(pause)
            pause = min(pause * 2, 30.0)

    def _build_dispatcher(self, *, webhook: bool) -> Any:
        import lark_oapi as lark

        key = _secret(self._settings.encrypt_key) if webhook else ""
        token = _secret(self._settings.verification_token) if webhook else ""
        return (
            lark.EventDispatcherHandler.builder(key or "", token or "")
            .register_p2_im_message_receive_v1(self._on_message)
            .register_p2_card_action_trigger(self._on_card_action)
            .build()
        )

    # -- lark's handlers (on a thread that is not HotPlex's loop) ---------------------------

    def _submit(self, work: Coroutine[Any, Any, Any], wait: float) -> Any:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            return future.result(timeout=wait)
        except concurrent.futures.TimeoutError:
            return None  # it goes on; answer Feishu now

    def _on_message(self, data: Any) -> None:
        import lark_oapi as lark

        envelope = json.loads(lark.JSON.marshal(data))
        try:
            self._submit(self._receive(envelope), ACK_WAIT)
        except Exception:
            log.exception("feishu: a message event failed")

    def _on_card_action(self, data: Any) -> Any:
        import lark_oapi as lark
        from lark_oapi.event.callback.model.p2_card_action_trigger import (
            P2CardActionTriggerResponse,
        )

        envelope = json.loads(lark.JSON.marshal(data))
        try:
            body = self._submit(self.card_action(envelope), CARD_WAIT)
        except Exception:
            log.exception("feishu: a card action failed")
            body = _toast("error", "That did not work; please try again.")
        if body is None:
            body = _toast("info", "Received; the card will show the decision.")
        return P2CardActionTriggerResponse(body)

    # -- on HotPlex's loop ------------------------------------------------------------------

    async def _receive(self, envelope: dict[str, Any]) -> None:
        assert self._deliver is not None and self.bot_open_id is not None
        message = to_message(
            envelope,
            bot_open_id=self.bot_open_id,
            threads=self._threads,
            download=self._operations.download,
        )
        if message is None:
            return
        if not message.direct and not message.mentions_bot and await self._answered(message):
            message = dataclasses.replace(message, mentions_bot=True)
        await self._deliver(message)

    async def _answered(self, message: IncomingMessage) -> bool:
        """Whether a message inside a thread (not its root) is in a thread that already has
        a session: the bot was called into it before (perhaps before a restart), so it
        follows it without a new mention."""
        where = Address.of(message.address)
        root = where.thread
        if root is None or message.ref is None or message.ref.message_id == root:
            return False
        if self._settings.session_scope != "thread":
            return False
        storage = self._ctx.services.find(STORAGE)
        if storage is None:
            return False
        key = session_id_for(str(where), self._ctx.settings.engine.namespace)
        if await storage.get_session(key) is None:
            return False
        self._threads.add(where.channel, root)
        return True

    async def card_action(self, envelope: dict[str, Any]) -> dict[str, Any]:
        """The answer to a card button: an approval decided through ``ChatBridge.decide``
        (a toast saying how it stands, and the card showing it)."""
        event = envelope.get("event") or {}
        value = (event.get("action") or {}).get("value") or {}
        open_id = (event.get("operator") or {}).get("open_id")
        if not isinstance(value, dict) or value.get("hotplex") != "approval" or not open_id:
            return {}
        decision, scope = value.get("decision"), value.get("scope", "once")
        permission_id = value.get("id")
        if decision not in ("allow", "deny") or scope not in ("once", "session"):
            return _toast("error", "This button is not understood.")
        bridge = self._ctx.services.get(CHAT_BRIDGE)
        try:
            outcome = await bridge.decide(
                str(permission_id), decision, by=f"feishu:{open_id}", scope=scope
            )
        except NotAuthorizedError:
            return _toast("error", _NOT_YOURS)
        except (ApprovalError, KeyError, LookupError):
            return _toast("info", "This request is no longer open.")
        return self._decided(str(permission_id), outcome)

    def _decided(self, permission_id: str, outcome: ApprovalOutcome) -> dict[str, Any]:
        request = self._operations.request(permission_id)
        if request is None:  # shown before a restart: core updates the card
            verb = {"allow": "Allowed", "deny": "Denied"}.get(outcome.decision, "Expired")
            return _toast("info", f"{verb}" + (f" by {outcome.by}" if outcome.by else ""))
        line = approval_outcome_text(request, outcome, feishu_escape)
        body = _toast("success" if outcome.decision == "allow" else "info", line)
        body["card"] = {"type": "raw", "data": self.card_templates().approval(request, outcome)}
        return body

    # -- webhook mode -----------------------------------------------------------------------

    def http_routes(self) -> list[RouteSpec]:
        if self._settings.mode != "webhook":
            return []
        return [
            RouteSpec("POST", "/feishu/events", self._webhook, auth="none"),
            RouteSpec("POST", "/feishu/cards", self._webhook, auth="none"),
        ]

    async def _webhook(self, request: web.Request) -> web.StreamResponse:
        if self._dispatcher is None:
            return web.json_response({"msg": "starting"}, status=503)
        body = await request.read()
        try:
            kind, envelope = self._guard.open(request.headers, body)
        except Rejected as refusal:
            log.warning("feishu: webhook request refused (%s): %s", refusal.status, refusal)
            return web.json_response({"msg": refusal.public}, status=refusal.status)
        if kind == "challenge":
            return web.json_response({"challenge": envelope["challenge"]})
        header = envelope.get("header")
        if not isinstance(header, dict) or header.get("event_type") not in _EVENTS:
            return web.json_response({"msg": "ignored"})
        from lark_oapi.core.model import RawRequest

        raw = RawRequest()
        raw.uri = request.path
        raw.body = body
        for name in ("X-Lark-Request-Timestamp", "X-Lark-Request-Nonce", "X-Lark-Signature"):
            if name in request.headers:
                raw.headers[name] = request.headers[name]
        answer = await asyncio.to_thread(self._dispatcher.do, raw)
        if answer.status_code != 200:
            log.error("feishu: the event dispatcher failed on a checked request")
            return web.json_response({"msg": "internal error"}, status=500)
        return web.Response(body=answer.content, content_type="application/json")


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None
