"""What the fake Slack holds and records: users, channels, messages, files, calls, deliveries.

Everything here is plain data a test reads after (or while) driving the adapter; the server
mutates it and wakes :meth:`FakeSlack.wait_for` after every change.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

JSON = dict[str, Any]

StreamState = Literal["in_progress", "completed", "stopped_by_user"]
DeliveryKind = Literal["events_api", "interactive", "slash_commands"]


@dataclass
class User:
    id: str
    name: str
    is_bot: bool = False
    team_id: str = ""

    def as_json(self) -> JSON:
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "real_name": self.name,
            "is_bot": self.is_bot,
            "deleted": False,
            "profile": {"display_name": self.name, "real_name": self.name},
        }


@dataclass
class Channel:
    """A conversation: a public channel (``C…``), a private one, or a DM (``is_im``, ``D…``)."""

    id: str
    name: str
    is_im: bool = False
    is_private: bool = False
    members: set[str] = field(default_factory=set)
    #: The other person of a DM.
    user: str | None = None

    @property
    def channel_type(self) -> str:
        if self.is_im:
            return "im"
        return "group" if self.is_private else "channel"

    def as_json(self, bot_user_id: str) -> JSON:
        data: JSON = {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_im and not self.is_private,
            "is_group": self.is_private,
            "is_im": self.is_im,
            "is_private": self.is_private or self.is_im,
            "is_member": bot_user_id in self.members,
            "is_archived": False,
        }
        if self.user is not None:
            data["user"] = self.user
        return data


@dataclass
class Edit:
    """One earlier version of a message, kept when ``chat.update`` or a response URL changed it."""

    text: str
    blocks: list[JSON] | None
    at: float
    by: str


@dataclass
class Message:
    """A message as a Slack client would show it now.

    ``text`` of a streamed message is everything streamed so far (markdown chunks and
    ``markdown_text`` appended in order); ``chunks`` keeps every chunk object received.
    ``streaming`` is ``None`` for ordinary messages.
    """

    channel: str
    ts: str
    text: str
    user: str | None
    bot_id: str | None = None
    thread_ts: str | None = None
    blocks: list[JSON] | None = None
    markdown_text: str | None = None
    files: list[JSON] = field(default_factory=list)
    subtype: str | None = None
    metadata: JSON | None = None
    streaming: StreamState | None = None
    stream_started_at: float | None = None
    chunks: list[JSON] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    reactions: dict[str, list[str]] = field(default_factory=dict)
    deleted: bool = False
    #: The id a Slack client gives a user's message (the same in every event about it).
    client_msg_id: str | None = None
    #: ``time.monotonic()`` when it was posted, and when it first showed any text (a
    #: placeholder posted empty and filled by an update or a stream append shows it later).
    posted_at: float = field(default_factory=time.monotonic)
    first_text_at: float | None = None

    def __post_init__(self) -> None:
        if self.first_text_at is None and self.text:
            self.first_text_at = self.posted_at

    def note_text(self) -> None:
        """Record when the text first became non-empty (call after changing ``text``)."""
        if self.first_text_at is None and self.text:
            self.first_text_at = time.monotonic()

    @property
    def by_bot(self) -> bool:
        return self.bot_id is not None

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def as_json(self) -> JSON:
        data: JSON = {"type": "message", "ts": self.ts, "text": self.text}
        if self.user is not None:
            data["user"] = self.user
        if self.bot_id is not None:
            data["bot_id"] = self.bot_id
        optional = {
            "thread_ts": self.thread_ts,
            "blocks": self.blocks,
            "subtype": self.subtype,
            "metadata": self.metadata,
            "streaming_state": self.streaming,
            "client_msg_id": self.client_msg_id,
        }
        data.update({key: value for key, value in optional.items() if value is not None})
        if self.files:
            data["files"] = self.files
        if self.edits:
            data["edited"] = {"user": self.edits[-1].by, "ts": self.ts}
        return data


@dataclass
class FileRecord:
    """A file in the workspace: attached by a user, or uploaded by the bot (``uploads``)."""

    id: str
    name: str
    title: str
    mimetype: str
    content: bytes | None
    user: str
    url_private: str
    url_private_download: str
    length: int | None = None
    channels: list[str] = field(default_factory=list)
    thread_ts: str | None = None
    completed: bool = False

    @property
    def filetype(self) -> str:
        return self.name.rsplit(".", 1)[-1].lower() if "." in self.name else "binary"

    def as_json(self) -> JSON:
        return {
            "id": self.id,
            "name": self.name,
            "title": self.title,
            "mimetype": self.mimetype,
            "filetype": self.filetype,
            "size": len(self.content or b""),
            "user": self.user,
            "url_private": self.url_private,
            "url_private_download": self.url_private_download,
            "permalink": self.url_private,
            "channels": list(self.channels),
            "is_external": False,
        }


@dataclass
class Call:
    """One Web API request: method, merged arguments, when (``time.monotonic``), outcome.

    ``outcome`` is ``"ok"`` or the error code (``"ratelimited"`` for a 429).
    """

    method: str
    args: JSON
    at: float
    outcome: str = "ok"
    status: int = 200
    token: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass
class Ephemeral:
    """A message only ``user`` sees: ``chat.postEphemeral``, an ephemeral response URL post,
    or a slash command's ack text (``source`` says which)."""

    channel: str
    user: str
    text: str
    blocks: list[JSON] | None
    thread_ts: str | None
    source: str


@dataclass
class Status:
    """One ``assistant.threads.setStatus`` call (an empty ``status`` clears it)."""

    channel_id: str
    thread_ts: str
    status: str
    loading_messages: list[str] | None
    at: float


@dataclass
class View:
    """A modal opened with ``views.open`` (``closed`` after a submission acked without errors)."""

    id: str
    user: str
    view: JSON
    trigger_id: str
    closed: bool = False
    submissions: int = 0

    @property
    def callback_id(self) -> str | None:
        value = self.view.get("callback_id")
        return value if isinstance(value, str) else None


@dataclass
class Trigger:
    id: str
    user: str
    issued_at: float
    used: bool = False


@dataclass
class ResponseUrl:
    """A ``response_url`` handed out with a click or a slash command (30 min, 5 uses)."""

    id: str
    channel: str
    user: str
    issued_at: float
    message_ts: str | None = None
    thread_ts: str | None = None
    uses: int = 0


@dataclass
class Attempt:
    """One try at delivering a payload: over Socket Mode (``envelope_id``) or HTTP."""

    transport: Literal["socket", "http"]
    retry_attempt: int
    retry_reason: str
    sent_at: float
    envelope_id: str | None = None
    acked_at: float | None = None
    #: The ack's ``payload`` (Socket Mode) or the parsed/raw HTTP response body.
    response: Any = None
    http_status: int | None = None


@dataclass
class Delivery:
    """A payload the fake sends the app, with every attempt (retries included)."""

    kind: DeliveryKind
    payload: JSON
    event_id: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    gave_up: bool = False

    @property
    def acked(self) -> bool:
        return any(attempt.acked_at is not None for attempt in self.attempts)

    @property
    def response(self) -> Any:
        """The response of the acked attempt (ack payload or HTTP body), else ``None``."""
        for attempt in self.attempts:
            if attempt.acked_at is not None:
                return attempt.response
        return None


@dataclass
class Ack:
    """A Socket Mode ack frame as received: ``{"envelope_id": ..., "payload": ...?}``."""

    envelope_id: str
    payload: Any
    at: float
    known: bool
