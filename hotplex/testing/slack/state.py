"""The fake workspace's state, its identifiers, and the change signal every wait listens to."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from hotplex.testing.slack.limits import ApiError
from hotplex.testing.slack.records import (
    Ack,
    Call,
    Channel,
    Delivery,
    Ephemeral,
    FileRecord,
    Message,
    ResponseUrl,
    Status,
    Trigger,
    User,
    View,
)

T = TypeVar("T")

#: Bot scopes granted by default: what the HotPlex Slack app manifest asks for.
DEFAULT_SCOPES = (
    "app_mentions:read",
    "assistant:write",
    "channels:history",
    "channels:read",
    "chat:write",
    "commands",
    "files:read",
    "files:write",
    "groups:history",
    "groups:read",
    "im:history",
    "im:read",
    "im:write",
    "mpim:history",
    "reactions:write",
    "users:read",
)


@dataclass
class Settings:
    """Knobs a test may change at any time (through the same attributes on :class:`FakeSlack`)."""

    #: Seconds (of the injected clock) a stream accepts appends after ``chat.startStream``.
    stream_lifetime: float = 300.0
    #: ``False``: the ``chat.*Stream`` methods answer ``unknown_method`` (a workspace without them).
    streaming_enabled: bool = True
    #: Seconds a ``trigger_id`` stays valid for ``views.open``.
    trigger_lifetime: float = 3.0
    #: Seconds a ``response_url`` stays valid, and how often it may be used.
    response_url_lifetime: float = 1800.0
    response_url_uses: int = 5
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    #: Send the app a ``message`` event (with ``bot_id``) for each of its own posts, as Slack
    #: does for an app subscribed to ``message.*``.
    echo_bot_messages: bool = False
    #: Socket Mode connections per app token; one more gets ``disconnect`` ``too_many_websockets``.
    max_connections: int = 10
    #: Slack is down: the Web API answers 503, sockets are refused, events wait.
    outage: bool = False
    #: ``http://127.0.0.1:PORT`` once the server listens.
    public_url: str = ""


class SlackState:
    """Users, channels, messages, files, modals and every record of traffic.

    ``clock`` (seconds, any origin) times stream lifetimes, trigger ids and response URLs, so
    a test can fast-forward them; call traffic is timestamped with ``time.monotonic``.
    """

    def __init__(
        self,
        *,
        team_id: str,
        bot_user_id: str,
        bot_id: str,
        app_id: str,
        clock: Callable[[], float],
    ):
        self.settings = Settings()
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.clock = clock
        self.users: dict[str, User] = {
            bot_user_id: User(bot_user_id, "hotplex", is_bot=True, team_id=team_id)
        }
        self.channels: dict[str, Channel] = {}
        self.history: dict[str, list[Message]] = {}
        self.files: dict[str, FileRecord] = {}
        self.views: list[View] = []
        self.triggers: dict[str, Trigger] = {}
        self.response_urls: dict[str, ResponseUrl] = {}
        self.ephemerals: list[Ephemeral] = []
        self.statuses: list[Status] = []
        self.calls: list[Call] = []
        self.deliveries: list[Delivery] = []
        self.acks: list[Ack] = []
        self._counter = itertools.count(1)
        self._last_ts = (0, 0)
        self._changed = asyncio.Event()
        #: Called with every message added (the fake uses it to echo the bot's posts).
        self.on_message: Callable[[Message], None] | None = None

    # -- change signal -------------------------------------------------------------------

    def changed(self) -> None:
        """Wake every waiter; called after each mutation."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], T], timeout: float) -> T:
        """Return ``predicate()`` once it is truthy, re-checking on every change and once more
        at the deadline (a condition that turns true without a change passes only then)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (result := predicate()):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"fake Slack: condition not met within {timeout} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return result

    # -- identifiers ---------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._counter):07d}{secrets.token_hex(2).upper()}"

    def new_ts(self) -> str:
        """A message ``ts`` (``"<epoch seconds>.<6 digits>"``), strictly increasing."""
        seconds = int(time.time())
        last_seconds, last_seq = self._last_ts
        if seconds <= last_seconds:
            seconds, seq = last_seconds, last_seq + 1
            if seq > 999_999:
                seconds, seq = seconds + 1, 0
        else:
            seq = 0
        self._last_ts = (seconds, seq)
        return f"{seconds}.{seq:06d}"

    # -- lookups -------------------------------------------------------------------------

    def channel(self, channel_id: object) -> Channel:
        if not isinstance(channel_id, str) or channel_id not in self.channels:
            raise ApiError("channel_not_found")
        return self.channels[channel_id]

    def dm_with(self, user_id: str) -> Channel:
        """The bot's DM with ``user_id``, opened (as ``D<user id>``) if there is none yet."""
        self.user(user_id)
        for channel in self.channels.values():
            if channel.is_im and channel.user == user_id:
                return channel
        channel = Channel(
            f"D{user_id}", f"dm-{user_id.lower()}", is_im=True, members={user_id, self.bot_user_id}
        )
        channel.user = user_id
        self.channels[channel.id] = channel
        self.changed()
        return channel

    def user(self, user_id: object) -> User:
        if not isinstance(user_id, str) or user_id not in self.users:
            raise ApiError("user_not_found")
        return self.users[user_id]

    def message(self, channel_id: str, ts: object) -> Message:
        for message in self.history.get(channel_id, []):
            if message.ts == ts and not message.deleted:
                return message
        raise ApiError("message_not_found")

    def find_message(self, ts: str) -> Message:
        """A message by ``ts`` in any channel (for the test helpers)."""
        for messages in self.history.values():
            for message in messages:
                if message.ts == ts and not message.deleted:
                    return message
        raise KeyError(f"fake Slack: no message with ts {ts}")

    def thread_root(self, channel_id: str, thread_ts: object) -> str:
        """The parent ``ts`` a reply to ``thread_ts`` belongs to (a reply's ts names its thread)."""
        if not isinstance(thread_ts, str) or not thread_ts:
            raise ApiError("invalid_thread_ts")
        for message in self.history.get(channel_id, []):
            if message.ts == thread_ts:
                return message.thread_ts or message.ts
        raise ApiError("invalid_thread_ts")

    # -- mutations -----------------------------------------------------------------------

    def add_message(self, message: Message) -> Message:
        self.history.setdefault(message.channel, []).append(message)
        self.changed()
        if self.on_message is not None:
            self.on_message(message)
        return message

    def messages(
        self, channel_id: str, thread_ts: str | None = None, *, include_deleted: bool = False
    ) -> list[Message]:
        found = [m for m in self.history.get(channel_id, []) if include_deleted or not m.deleted]
        if thread_ts is not None:
            found = [m for m in found if m.ts == thread_ts or m.thread_ts == thread_ts]
        return sorted(found, key=lambda m: (int(m.ts.split(".")[0]), int(m.ts.split(".")[1])))

    def issue_trigger(self, user: str) -> str:
        trigger = Trigger(f"{next(self._counter)}.{secrets.token_hex(6)}", user, self.clock())
        self.triggers[trigger.id] = trigger
        return trigger.id

    def use_trigger(self, trigger_id: object, lifetime: float) -> Trigger:
        trigger = self.triggers.get(trigger_id) if isinstance(trigger_id, str) else None
        if trigger is None:
            raise ApiError("invalid_trigger_id")
        if trigger.used:
            raise ApiError("exchanged_trigger_id")
        if self.clock() - trigger.issued_at > lifetime:
            raise ApiError("expired_trigger_id")
        trigger.used = True
        return trigger
