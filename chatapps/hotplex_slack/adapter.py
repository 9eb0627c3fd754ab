"""The Slack chat adapter: Slack's events into core's chat bridge, over Socket Mode or HTTP.

slack-bolt's ``AsyncApp`` holds the listeners (:mod:`hotplex_slack.handlers`); Socket Mode
runs it through ``AsyncSocketModeHandler`` (slack-sdk's aiohttp client: it reconnects on a
``disconnect`` message and when pings go unanswered for four intervals), HTTP mode through
the adapter's route ``POST /slack/events`` (:mod:`hotplex_slack.http`). Both use the one Web
API client of :mod:`hotplex_slack.api`, pointed at ``api_base_url``.

Slack being down never holds up HotPlex: ``run`` keeps trying (``auth.test``, then the
connection) with a growing pause, reporting ``connecting`` or ``down`` meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from hotplex.address import Address, session_id_for
from hotplex.chat import CHAT_BRIDGE, ChatBridge
from hotplex.context import PluginContext
from hotplex.interfaces import ChatAdapter
from hotplex.records import RouteSpec
from hotplex.services import STORAGE
from hotplex.types import IncomingMessage
from hotplex_slack.api import call, make_client
from hotplex_slack.events import BotIdentity, to_message
from hotplex_slack.handlers import register, slash_message
from hotplex_slack.operations import SlackOperations
from hotplex_slack.settings import SlackSettings

__all__ = ["SlackAdapter"]

log = logging.getLogger(__name__)

Deliver = Callable[[IncomingMessage], Awaitable[None]]
_FOLLOWED = 5000  # threads remembered as addressed to the bot (others: a stored session)
_MAX_PAUSE = 30.0


def _socket_alive(client: Any) -> bool:
    """slack-sdk's own test of its Socket Mode connection, without awaiting: open, not
    stale, and pongs seen within four ping intervals."""
    session = client.current_session
    if client.closed or client.stale or session is None or session.closed:
        return False
    last = client.last_ping_pong_time
    return last is None or time.time() - last < client.ping_interval * 4


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""


class SlackAdapter(ChatAdapter):
    name = "slack"
    platform = "slack"

    def __init__(self, ctx: PluginContext, settings: SlackSettings) -> None:
        from slack_bolt.async_app import AsyncApp

        self.ctx = ctx
        self.settings = settings
        self._token = _secret(settings.bot_token)
        client = make_client(self._token, base_url=settings.api_base_url, timeout=settings.timeout)
        self._operations = SlackOperations(client, settings)
        self.app = AsyncApp(
            client=client,
            signing_secret=_secret(settings.signing_secret),
            request_verification_enabled=settings.mode == "http",
            logger=logging.getLogger("hotplex_slack.bolt"),
        )
        register(self.app, self)
        self.identity: BotIdentity | None = None
        self._deliver: Deliver | None = None
        self._state = "connecting"
        self._followed: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._socket: Any = None  # slack-sdk's SocketModeClient, in Socket Mode

    @property
    def operations(self) -> SlackOperations:
        return self._operations

    def state(self) -> str:
        client = self._socket
        if self._state != "connected" or client is None:
            return self._state
        return "connected" if _socket_alive(client) else "connecting"

    def bridge(self) -> ChatBridge:
        return self.ctx.services.get(CHAT_BRIDGE)

    def ready(self) -> bool:
        """Whether events can be taken: the bot knows who it is and where to deliver."""
        return self.identity is not None and self._deliver is not None

    def http_routes(self) -> list[RouteSpec]:
        if self.settings.mode != "http":
            return []
        from hotplex_slack.http import events_route

        return [events_route(self)]

    # -- running -------------------------------------------------------------------------

    async def run(self, deliver: Deliver) -> None:
        self._deliver = deliver
        try:
            await self._identify()
            if self.settings.mode == "http":
                self._state = "connected"
                await asyncio.Event().wait()  # requests come through the route
            else:
                await self._socket_mode()
        finally:
            self._state = "down"

    async def _identify(self) -> None:
        """``auth.test`` until it answers: the team and the bot's own user id."""
        pause = 1.0
        while self.identity is None:
            try:
                data = await call(self.operations.client.auth_test())
                self.identity = BotIdentity(
                    team_id=str(data["team_id"]),
                    user_id=str(data["user_id"]),
                    bot_id=str(data["bot_id"]) if data.get("bot_id") else None,
                )
            except Exception as exc:
                self._state = "down"
                log.warning("Slack auth.test failed (%s); trying again in %.0f s", exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, _MAX_PAUSE)

    async def _socket_mode(self) -> None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        handler: Any = AsyncSocketModeHandler(
            self.app,
            app_token=_secret(self.settings.app_token),
            ping_interval=self.settings.ping_interval,
            logger=logging.getLogger("hotplex_slack.socket"),
        )
        pause = 1.0
        try:
            while True:  # the first connection; slack-sdk keeps it up from then on
                try:
                    await handler.connect_async()
                    break
                except Exception as exc:
                    self._state = "down"
                    log.warning(
                        "Slack Socket Mode did not connect (%s); again in %.0f s", exc, pause
                    )
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, _MAX_PAUSE)
            # slack-sdk reconnects on ``disconnect`` and on a silent socket by itself;
            # :meth:`state` reads the health of its connection
            self._socket = handler.client
            self._state = "connected"
            await asyncio.Event().wait()
        finally:
            self._socket = None
            await asyncio.shield(handler.close_async())

    # -- events --------------------------------------------------------------------------

    def _following(self, channel: str, thread: str) -> bool:
        return (channel, thread) in self._followed

    def _follow(self, message: IncomingMessage) -> None:
        raw = (message.raw or {}).get("event") or {}
        key = (str(raw.get("channel")), str(raw.get("thread_ts") or raw.get("ts")))
        self._followed[key] = None
        self._followed.move_to_end(key)
        while len(self._followed) > _FOLLOWED:
            self._followed.popitem(last=False)

    async def on_event(self, body: dict[str, Any]) -> None:
        """A ``message`` or ``app_mention`` event: dispatched, or answered ephemerally when
        it is a chat command."""
        if not self.ready():
            raise RuntimeError("the Slack adapter is not running yet")
        assert self.identity is not None and self._deliver is not None
        message = self._parse(body)
        if message is None:
            return
        if not message.mentions_bot and await self._answered(message):
            self._follow(message)  # followed from now on: read it again as addressed to us
            message = self._parse(body) or message
        if message.mentions_bot and not message.direct and not message.from_bot:
            self._follow(message)
        user = message.user.removeprefix("slack:")
        self.operations.recipient(message.address, self.identity.team_id, user)
        if message.text.split(" ", 1)[0] == "/hotplex" and not message.from_bot:
            await self._command(message)
            return
        await self._deliver(message)

    def _parse(self, body: dict[str, Any]) -> IncomingMessage | None:
        assert self.identity is not None
        return to_message(
            body,
            self.identity,
            download=self.download,
            multi_bot=self.settings.multi_bot,
            following=self._following,
        )

    async def _answered(self, message: IncomingMessage) -> bool:
        """Whether a reply inside a channel thread the bot does not follow in memory is in a
        thread that has a session: the bot was called into it before a restart (or before
        the thread fell out of memory), so it follows it without a new mention."""
        if message.direct or self.settings.multi_bot:
            return False
        if self.settings.session_scope != "thread":
            return False  # a channel or user session says nothing about this thread
        where = Address.of(message.address)
        if where.thread is None or message.ref is None or message.ref.message_id == where.thread:
            return False  # a post of its own, not a reply in a thread
        storage = self.ctx.services.find(STORAGE)
        if storage is None:
            return False
        key = session_id_for(str(where), self.ctx.settings.engine.namespace)
        try:
            return await storage.get_session(key) is not None
        except Exception:
            log.exception("could not tell whether %s has a session", where)
            return False

    async def on_command(self, command: dict[str, Any]) -> None:
        """The ``/hotplex`` slash command."""
        if self.identity is None:
            return
        await self._command(slash_message(command, self.identity.team_id))

    async def _command(self, message: IncomingMessage) -> None:
        """A chat command, answered so that only its sender sees it."""
        handled = await self.bridge().handle(self, message, render=False)
        if handled.reply:
            try:
                await self.operations.reply_ephemeral(message.address, message.user, handled.reply)
            except Exception:
                log.exception("answering a command in %s failed", message.address)

    async def download(self, url: str) -> bytes:
        """A file's bytes, fetched with the bot token (Slack answers an HTML sign-in page
        to a request without it: that is refused, not saved)."""
        limits = self.ctx.settings.chat.attachments
        timeout = aiohttp.ClientTimeout(total=float(limits.timeout))
        headers = {"Authorization": f"Bearer {self._token}"}
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, headers=headers) as response,
        ):
            if response.status != 200:
                raise OSError(f"Slack answered {response.status} for the file")
            if response.content_type == "text/html":
                raise OSError("Slack answered a sign-in page, not the file (files:read?)")
            data = bytearray()  # one byte past the limit is enough for core to refuse it
            async for chunk in response.content.iter_chunked(65536):
                data += chunk
                if len(data) > limits.max_bytes:
                    break
            return bytes(data)
