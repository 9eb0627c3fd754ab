"""``FakeFeishu``: the fake served on 127.0.0.1 from its own thread and event loop.

Its own thread, because lark-oapi fetches tenant tokens with blocking ``requests`` even from
its async methods: a fake on the caller's loop would deadlock on the first token fetch.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from hotplex.testing.feishu import actions, events
from hotplex.testing.feishu.cardkit import CardKit
from hotplex.testing.feishu.limits import Clock, Limits
from hotplex.testing.feishu.longconn import LongConnection
from hotplex.testing.feishu.models import (
    Ack,
    Call,
    CardAnswer,
    CardEntity,
    Chat,
    Delivery,
    MessageView,
    User,
)
from hotplex.testing.feishu.openapi import OpenApi
from hotplex.testing.feishu.sender import Sender, Via
from hotplex.testing.feishu.store import CardToken, Store
from hotplex.testing.feishu.threaded import Changes, LoopThread, ServedFromThread

__all__ = ["FakeFeishu"]

JSON = dict[str, Any]


class FakeFeishu(ServedFromThread):
    """The fake Feishu/Lark open platform; see :mod:`hotplex.testing.feishu` for the API."""

    def __init__(
        self,
        *,
        app_id: str | None = None,
        app_secret: str | None = None,
        verification_token: str = "v_token",
        encrypt_key: str = "",
        tenant_key: str = "T1",
        bot_open_id: str = "ou_bot",
        bot_name: str = "HotPlex",
        clock: Clock | None = None,
        limits: Limits | None = None,
        client_config: JSON | None = None,
        repush_delays: Sequence[float] = (),
    ) -> None:
        self.app_id = app_id or "cli_" + secrets.token_hex(8)
        self.app_secret = app_secret or secrets.token_hex(16)
        self.verification_token = verification_token
        self.encrypt_key = encrypt_key
        self.tenant_key = tenant_key
        self.bot_open_id = bot_open_id
        self.bot_name = bot_name
        self.limits = limits or Limits()
        self.clock: Clock = clock or time.time
        self._lock = threading.RLock()
        self._changes = Changes()
        self._changed = self._changes.changed
        self._store = Store(
            self.app_id, self.app_secret, tenant_key, bot_open_id, self.clock, self.limits
        )
        self._cardkit = CardKit(self._store)
        self._api = OpenApi(self._store, self._cardkit, lock=self._lock, on_change=self._changed)
        self._longconn = LongConnection(
            app_id=self.app_id,
            app_secret=self.app_secret,
            clock=self.clock,
            on_change=self._changed,
            client_config=client_config,
            injected=self._api.injected,
            max_connections=self.limits.connections,
        )
        self._sender = Sender(
            longconn=self._longconn,
            encrypt_key=encrypt_key,
            clock=self.clock,
            ack_seconds=self.limits.ack_seconds,
            lock=self._lock,
            on_change=self._changed,
            repush_delays=repush_delays,
        )
        self._store.add_user(bot_open_id, bot_name)
        self._server = LoopThread("fake-feishu", self._make_app, self._before_cleanup)

    # --- lifecycle ------------------------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self._longconn.add_routes(app)
        self._api.add_routes(app)
        return app

    async def _before_cleanup(self) -> None:
        await self._longconn.drop()
        await self._sender.close()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: the ``domain`` of ``lark.Client`` and ``lark.ws.Client``."""
        if not self._server.port:
            raise RuntimeError("FakeFeishu is not running")
        return f"http://127.0.0.1:{self._server.port}"

    async def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0) -> None:
        """Return once ``predicate()`` is true, re-checked after every change in the fake
        (API call, push, ack, connection); ``TimeoutError`` after ``timeout`` seconds."""
        await self._changes.wait_for(predicate, timeout)

    # --- directory ------------------------------------------------------------------------

    def add_user(self, open_id: str, name: str | None = None) -> User:
        with self._lock:
            return self._store.add_user(open_id, name)

    def add_chat(
        self, chat_id: str, chat_type: str = "group", members: Sequence[str] = (), name: str = ""
    ) -> Chat:
        with self._lock:
            return self._store.add_chat(chat_id, chat_type, list(members), name)

    def p2p_chat(self, open_id: str) -> str:
        """The chat id of the bot's p2p chat with ``open_id`` (created on first use)."""
        with self._lock:
            self._store.add_user(open_id)
            return self._store.p2p_chat(open_id).chat_id

    # --- what happened --------------------------------------------------------------------

    def messages(self, chat_id: str | None = None) -> list[MessageView]:
        """Messages (the users' and the app's) in sending order, with their current content."""
        with self._lock:
            return [
                self._store.view(m)
                for m in self._store.messages.values()
                if chat_id is None or m.chat_id == chat_id
            ]

    def message(self, message_id: str) -> MessageView:
        with self._lock:
            return self._store.view(self._store.messages[message_id])

    @property
    def cards(self) -> dict[str, CardEntity]:
        """A snapshot of the CardKit entities by ``card_id``."""
        with self._lock:
            return copy.deepcopy(self._store.cards)

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._api.calls)

    def calls_named(self, name: str) -> list[Call]:
        return [c for c in self.calls if c.name == name]

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._sender.deliveries)

    @property
    def acks(self) -> list[Ack]:
        with self._lock:
            return list(self._longconn.acks)

    def resource(self, key: str) -> bytes:
        """The bytes of an uploaded image or file."""
        with self._lock:
            return self._store.resources[key].data

    # --- faults ---------------------------------------------------------------------------

    def fail_next(
        self,
        target: str,
        code: int = 99991400,
        *,
        msg: str = "injected failure",
        status: int | None = None,
        times: int = 1,
        reset: float = 1.0,
    ) -> None:
        """Answer the next ``times`` calls of ``target`` (a call name such as
        ``message.patch`` or ``ws.endpoint``, or an exact path) with error ``code``; a
        rate-limit answer asks to wait ``reset`` seconds (``x-ogw-ratelimit-reset``)."""
        self._api.fail_next(target, code, msg, status, times, reset)

    def expire_tokens(self) -> None:
        """Make every issued tenant token invalid (calls answer 99991663)."""
        with self._lock:
            self._store.expire_tokens()

    # --- the webhook side -----------------------------------------------------------------

    @property
    def webhook_url(self) -> str | None:
        """Where events are POSTed when no long connection is open."""
        return self._sender.webhook_url

    @webhook_url.setter
    def webhook_url(self, url: str | None) -> None:
        self._sender.webhook_url = url

    @property
    def card_url(self) -> str | None:
        """Where card callbacks are POSTed (``webhook_url`` when unset)."""
        return self._sender.card_url

    @card_url.setter
    def card_url(self, url: str | None) -> None:
        self._sender.card_url = url

    # --- pushing events -------------------------------------------------------------------

    def envelope(self, event_type: str, event: JSON, *, token: str | None = None) -> JSON:
        """A schema 2.0 envelope from this app (``token`` overrides the verification token)."""
        stamp = self.clock()
        create_time = str(int(stamp * (1_000_000 if event_type == "card.action.trigger" else 1000)))
        return events.envelope(
            event_type,
            event,
            app_id=self.app_id,
            tenant_key=self.tenant_key,
            token=self.verification_token if token is None else token,
            create_time=create_time,
        )

    async def deliver(self, payload: JSON, **overrides: Any) -> Delivery:
        """Push an envelope (see ``Sender.deliver`` for ``via``, ``url``, ``fragments`` and the
        webhook overrides ``encrypt_key``, ``timestamp``, ``nonce``, ``signature``)."""
        return await self._server.run(self._sender.deliver(payload, **overrides))

    async def repush(self, event_id: str, **overrides: Any) -> Delivery:
        """Push an earlier event again with the same ``event_id``, as Feishu does when an
        ack was lost or late."""
        return await self._server.run(self._sender.repush(event_id, **overrides))

    async def verify_url(self, url: str | None = None, *, token: str | None = None) -> Delivery:
        """POST a ``url_verification`` challenge (encrypted when there is an Encrypt Key)."""
        body = events.url_verification(self.verification_token if token is None else token)
        return await self.deliver(body, via="webhook", url=url or self.webhook_url)

    def prepare_user_message(
        self,
        chat_id: str,
        sender_open_id: str,
        text: str = "",
        *,
        mention_bot: bool = False,
        mentions: Sequence[str] = (),
        root_id: str | None = None,
        parent_id: str | None = None,
        image: bytes | None = None,
        file: tuple[str, bytes] | None = None,
        token: str | None = None,
    ) -> JSON:
        """Store a user's message and return its ``im.message.receive_v1`` envelope, without
        pushing it (``deliver`` it, possibly forged)."""
        with self._lock:
            event = actions.user_message_event(
                self._store,
                chat_id,
                sender_open_id,
                text,
                mention_bot=mention_bot,
                mentions=mentions,
                root_id=root_id,
                parent_id=parent_id,
                image=image,
                file=file,
                now=self.clock(),
            )
        self._changed()
        return self.envelope("im.message.receive_v1", event, token=token)

    async def user_message(
        self,
        chat_id: str,
        sender_open_id: str,
        text: str = "",
        *,
        mention_bot: bool = False,
        mentions: Sequence[str] = (),
        root_id: str | None = None,
        parent_id: str | None = None,
        image: bytes | None = None,
        file: tuple[str, bytes] | None = None,
        via: Via | None = None,
        fragments: int = 1,
    ) -> str:
        """A user sends a message: store it, push its event and wait for the ack (up to the
        ack time); returns the ``message_id``. The envelope is in ``deliveries``."""
        payload = self.prepare_user_message(
            chat_id,
            sender_open_id,
            text,
            mention_bot=mention_bot,
            mentions=mentions,
            root_id=root_id,
            parent_id=parent_id,
            image=image,
            file=file,
        )
        await self.deliver(payload, via=via, fragments=fragments)
        return str(payload["event"]["message"]["message_id"])

    async def click_card(
        self,
        message_id: str,
        value: JSON,
        operator_open_id: str,
        *,
        tag: str = "button",
        name: str | None = None,
        form_value: JSON | None = None,
        input_value: str | None = None,
        via: Via | None = None,
    ) -> CardAnswer:
        """A user clicks a card component: push ``card.action.trigger`` and return the answer
        (a raw card in it replaces the message's card, unless the card is streaming)."""
        with self._lock:
            message = self._store.message(message_id)
            event = events.card_action_event(
                operator=self._store.add_user(operator_open_id),
                tenant_key=self.tenant_key,
                message_id=message_id,
                chat_id=message.chat_id,
                value=value,
                tag=tag,
                name=name,
                form_value=form_value,
                input_value=input_value,
            )
            token = CardToken(message_id, self.clock())
            self._store.card_tokens[str(event["token"])] = token
        delivery = await self.deliver(self.envelope("card.action.trigger", event), via=via)
        with self._lock:
            token.answered = delivery.status is not None
            answer = actions.apply_card_answer(self._store, message_id, delivery)
        if answer.applied:
            self._changed()
        return answer

    # --- the long connection --------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """A long-connection client is connected."""
        return self._longconn.connected

    @property
    def connection_count(self) -> int:
        return sum(1 for c in self._longconn.connections if not c.ws.closed)

    @property
    def endpoint_requests(self) -> int:
        """How many ``/callback/ws/endpoint`` calls came (one per connect and reconnect)."""
        return self._longconn.endpoint_requests

    @property
    def pings(self) -> int:
        """Protocol pings received, over all connections so far."""
        return self._longconn.pings

    @property
    def pongs(self) -> int:
        """Protocol pongs sent (none while muted)."""
        return self._longconn.pongs

    def mute(self, muted: bool = True) -> None:
        """Stop (or resume) answering pings, protocol and WebSocket ones, while keeping the
        sockets open: a silent connection a watchdog must notice."""
        self._longconn.muted = muted

    async def drop_connection(self, *, abrupt: bool = False) -> None:
        """Close the long connections from the server side (``abrupt``: cut the TCP
        connection without a closing handshake); the SDK reconnects."""
        await self._server.run(self._longconn.drop(abrupt=abrupt))

    def set_client_config(self, **values: int) -> None:
        """Change the ClientConfig (``PingInterval``, ``ReconnectInterval``, ``ReconnectNonce``,
        ``ReconnectCount``) that the next pongs and endpoint answers carry."""
        self._longconn.configure(values)

    def reject_handshake(
        self, status: int | None = 514, msg: str = "rejected", auth_code: int | None = 1000040350
    ) -> None:
        """Refuse WebSocket upgrades with the ``handshake-*`` headers the SDK reads: 403, or
        514 with auth code 1000040350 (connection limit), stop the client; other statuses are
        retried. None accepts again."""
        self._longconn.reject_handshake(status, msg, auth_code)

    def reject_connections(self, code: int | None, msg: str = "rejected") -> None:
        """Answer every endpoint call with ``code`` (1 = busy, retried; other codes stop the
        client); None accepts again."""
        self._longconn.endpoint_answer = None if code is None else {"code": code, "msg": msg}
