"""FakeSlack: the server, its knobs, and what a test reads (see the package docstring)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Self, TypeVar

from aiohttp import web

from hotplex.testing.slack import payloads
from hotplex.testing.slack.delivery import Deliverer
from hotplex.testing.slack.rate import RateLimiter, RateMode
from hotplex.testing.slack.records import (
    JSON,
    Ack,
    Call,
    Channel,
    Delivery,
    Ephemeral,
    FileRecord,
    Message,
    Status,
    User,
    View,
)
from hotplex.testing.slack.responses import ResponseUrls
from hotplex.testing.slack.socket_mode import Connection, SocketModeServer
from hotplex.testing.slack.state import SlackState
from hotplex.testing.slack.web import WebApi

T = TypeVar("T")


class FakeSlackBase:
    """Server lifecycle, configuration and the recorded state; events are in :class:`FakeSlack`."""

    def __init__(
        self,
        *,
        team_id: str = "T0HOTPLEX",
        bot_user_id: str = "UBOT",
        bot_id: str = "B0HOTPLEX",
        app_id: str = "A0HOTPLEX",
        stream_lifetime: float = 300.0,
        clock: Callable[[], float] | None = None,
        rate_limits: RateMode = "loose",
        ack_timeout: float = 3.0,
        scopes: Sequence[str] | None = None,
    ) -> None:
        self.state = SlackState(
            team_id=team_id,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            app_id=app_id,
            clock=clock or time.monotonic,
        )
        self.state.settings.stream_lifetime = stream_lifetime
        if scopes is not None:
            self.state.settings.scopes = tuple(scopes)
        self.bot_token = f"xoxb-{secrets.token_hex(8)}"
        self.app_token = f"xapp-1-{app_id}-{secrets.token_hex(8)}"
        self.signing_secret = secrets.token_hex(16)
        self.limiter = RateLimiter(rate_limits)
        self.sockets = SocketModeServer(
            self.state, on_ack=self._on_ack, on_connect=self._on_connect
        )
        self.deliverer = Deliverer(self.state, self.sockets, signing_secret=self.signing_secret)
        self.deliverer.ack_timeout = ack_timeout
        self.responses = ResponseUrls(self.state)
        self.web_api = WebApi(
            self.state,
            self.limiter,
            bot_token=self.bot_token,
            app_token=self.app_token,
            open_connection=self.sockets.open_url,
        )
        self._runner: web.AppRunner | None = None
        self.state.on_message = self._echo

    def _echo(self, message: Message) -> None:
        if not self.state.settings.echo_bot_messages or message.bot_id != self.bot_id:
            return
        channel = self.state.channels[message.channel]
        event = payloads.message_event(self.state, channel, message)
        event.update({"bot_id": self.bot_id, "app_id": self.app_id})
        envelope = payloads.event_callback(self.state, event)
        self.deliverer.spawn(
            self.deliverer.deliver("events_api", envelope, event_id=envelope["event_id"])
        )

    def _on_ack(self, envelope_id: str, payload: object) -> None:
        self.deliverer.on_ack(envelope_id, payload)

    def _on_connect(self) -> None:
        self.deliverer.on_connect()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes(self.web_api.routes() + self.sockets.routes() + self.responses.routes())
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.state.settings.public_url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        await self.deliverer.shutdown()
        await self.sockets.shutdown()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- addresses and knobs -----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self.state.settings.public_url

    @property
    def api_base_url(self) -> str:
        """What ``AsyncWebClient(base_url=...)`` takes: ``http://127.0.0.1:PORT/api/``."""
        return f"{self.base_url}/api/"

    @property
    def team_id(self) -> str:
        return self.state.team_id

    @property
    def bot_user_id(self) -> str:
        return self.state.bot_user_id

    @property
    def bot_id(self) -> str:
        return self.state.bot_id

    @property
    def app_id(self) -> str:
        return self.state.app_id

    @property
    def http_target(self) -> str | None:
        """URL events are POSTed to when no Socket Mode client is connected."""
        return self.deliverer.http_target

    @http_target.setter
    def http_target(self, url: str | None) -> None:
        self.deliverer.http_target = url
        if url is not None:
            self.deliverer.flush_pending()

    @property
    def ack_timeout(self) -> float:
        return self.deliverer.ack_timeout

    @ack_timeout.setter
    def ack_timeout(self, seconds: float) -> None:
        self.deliverer.ack_timeout = seconds

    @property
    def retry_delays(self) -> tuple[float, ...]:
        return self.deliverer.retry_delays

    @retry_delays.setter
    def retry_delays(self, delays: Sequence[float]) -> None:
        self.deliverer.retry_delays = tuple(delays)

    @property
    def stream_lifetime(self) -> float:
        return self.state.settings.stream_lifetime

    @stream_lifetime.setter
    def stream_lifetime(self, seconds: float) -> None:
        self.state.settings.stream_lifetime = seconds

    @property
    def streaming_enabled(self) -> bool:
        return self.state.settings.streaming_enabled

    @streaming_enabled.setter
    def streaming_enabled(self, enabled: bool) -> None:
        self.state.settings.streaming_enabled = enabled

    @property
    def trigger_lifetime(self) -> float:
        return self.state.settings.trigger_lifetime

    @trigger_lifetime.setter
    def trigger_lifetime(self, seconds: float) -> None:
        self.state.settings.trigger_lifetime = seconds

    @property
    def echo_bot_messages(self) -> bool:
        """Whether the app gets a ``message`` event for each of its own posts (default no)."""
        return self.state.settings.echo_bot_messages

    @echo_bot_messages.setter
    def echo_bot_messages(self, echo: bool) -> None:
        self.state.settings.echo_bot_messages = echo

    @property
    def max_connections(self) -> int:
        return self.state.settings.max_connections

    @max_connections.setter
    def max_connections(self, count: int) -> None:
        self.state.settings.max_connections = count

    @property
    def scopes(self) -> tuple[str, ...]:
        return self.state.settings.scopes

    @scopes.setter
    def scopes(self, scopes: Sequence[str]) -> None:
        self.state.settings.scopes = tuple(scopes)

    @property
    def rate_limits(self) -> RateMode:
        return self.limiter.mode

    @rate_limits.setter
    def rate_limits(self, mode: RateMode) -> None:
        self.limiter.mode = mode

    def set_rate_limit(self, method: str, calls: int, per_seconds: float) -> None:
        """Give ``method`` its own budget (``calls`` per ``per_seconds``), in any mode."""
        self.limiter.set_limit(method, calls, per_seconds)

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        *,
        retry_after: float = 1,
        status: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail.

        ``"ratelimited"`` answers HTTP 429 with ``Retry-After: retry_after``; any other code
        answers HTTP 200 ``{"ok": false, "error": error}`` (or ``status``, e.g. 500).
        """
        code = status if status is not None else (429 if error == "ratelimited" else 200)
        self.limiter.fail_next(method, error, retry_after=retry_after, status=code, times=times)

    # -- workspace ---------------------------------------------------------------------------

    def add_user(self, user_id: str, *, name: str | None = None, is_bot: bool = False) -> User:
        user = User(user_id, name or user_id.lower(), is_bot=is_bot, team_id=self.team_id)
        self.state.users[user_id] = user
        return user

    def add_channel(
        self,
        channel_id: str,
        *,
        name: str | None = None,
        is_im: bool = False,
        is_private: bool = False,
        members: Sequence[str] = (),
        bot_member: bool = True,
    ) -> Channel:
        """Add a conversation; every member (and the bot unless ``bot_member=False``) is in it.

        Members that are not users yet are added as users.
        """
        all_members = set(members) | ({self.bot_user_id} if bot_member else set())
        for member in all_members - set(self.state.users):
            self.add_user(member)
        channel = Channel(
            channel_id,
            name or channel_id.lower(),
            is_im=is_im,
            is_private=is_private,
            members=all_members,
        )
        if is_im:
            others = sorted(all_members - {self.bot_user_id})
            channel.user = others[0] if others else None
        self.state.channels[channel_id] = channel
        return channel

    def add_dm(self, user_id: str, channel_id: str | None = None) -> Channel:
        """The bot's DM with ``user_id`` (``D`` + user id unless named)."""
        return self.add_channel(channel_id or f"D{user_id}", is_im=True, members=[user_id])

    # -- what a test reads -------------------------------------------------------------------

    def messages(
        self, channel: str, thread_ts: str | None = None, *, include_deleted: bool = False
    ) -> list[Message]:
        """Messages of ``channel``, oldest first; with ``thread_ts``, that thread (parent too)."""
        return self.state.messages(channel, thread_ts, include_deleted=include_deleted)

    def message(self, ts: str) -> Message:
        """The (not deleted) message with ``ts`` in any channel; ``KeyError`` if none."""
        return self.state.find_message(ts)

    @property
    def calls(self) -> list[Call]:
        return self.state.calls

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.state.calls if call.method == method]

    @property
    def ephemerals(self) -> list[Ephemeral]:
        return self.state.ephemerals

    @property
    def statuses(self) -> list[Status]:
        return self.state.statuses

    @property
    def views(self) -> list[View]:
        return self.state.views

    @property
    def files(self) -> dict[str, FileRecord]:
        return self.state.files

    @property
    def uploads(self) -> list[FileRecord]:
        """Files the bot uploaded and completed with ``files.completeUploadExternal``."""
        return [f for f in self.state.files.values() if f.user == self.bot_user_id and f.completed]

    @property
    def acks(self) -> list[Ack]:
        return self.state.acks

    @property
    def deliveries(self) -> list[Delivery]:
        return self.state.deliveries

    @property
    def connections(self) -> list[Connection]:
        """Open Socket Mode connections (``sockets.history`` has all of them)."""
        return self.sockets.connections

    @property
    def response_posts(self) -> list[tuple[str, JSON]]:
        return self.responses.posts

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Wait until ``predicate()`` is truthy, re-checked after every change of the fake (and
        every :meth:`notify`) and once more at the deadline; return its value.
        ``TimeoutError`` after ``timeout`` seconds."""
        return await self.state.wait_for(predicate, timeout)

    def notify(self) -> None:
        """Wake :meth:`wait_for` after a change outside the fake (e.g. a listener of the app
        under test recorded something the predicate reads)."""
        self.state.changed()

    async def wait_connected(self, count: int = 1, timeout: float = 5.0) -> list[Connection]:
        """Wait until ``count`` Socket Mode connections are open (each was sent ``hello``)."""
        return await self.wait_for(
            lambda: (
                self.connections
                if len([c for c in self.connections if not c.closing]) >= count
                else []
            ),
            timeout,
        )

    async def wait_calls(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        def enough() -> list[Call]:
            calls = self.calls_to(method)
            return calls if len(calls) >= count else []

        return await self.wait_for(enough, timeout)
