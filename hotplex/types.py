"""Plain records passed between adapters, the dispatcher, the engine and providers."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from hotplex.confinement import Confinement

__all__ = [
    "AgentStartSpec",
    "ApprovalOutcome",
    "ApprovalRequest",
    "Attachment",
    "ChatCapabilities",
    "IncomingMessage",
    "MessageRef",
    "ToolDecision",
    "ToolRequest",
]


async def _no_download() -> bytes:
    raise LookupError("this attachment cannot be downloaded (it was restored from storage)")


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file or image attached to an incoming message.

    ``download()`` fetches its bytes with the adapter's credentials (an authenticated
    download) and raises on failure; ``url`` is for logs only. ``size`` and ``mime`` are
    what the platform announced (None: not announced).
    """

    name: str
    size: int | None
    mime: str | None
    kind: Literal["file", "image"]
    download: Callable[[], Awaitable[bytes]] = field(default=_no_download, compare=False)
    url: str | None = None


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A message a person (or a trigger) sent to a conversation.

    ``event_id`` is the platform's delivery id (dedup of retries); ``message_key`` is the
    platform's message identity, e.g. ``(platform, channel, ts)``, for dedup of duplicates.
    ``user`` is a namespaced identity (``slack:U01``, ``feishu:ou_x``, ``key:<api-key
    name>``, ``web:<name>``), so allow-lists of different platforms cannot collide.
    ``ref`` is the message itself (to react to it, reply in its thread, show typing);
    ``direct`` marks a direct (DM, p2p) conversation, ``mentions_bot`` a message that
    mentions the bot, ``from_bot`` one sent by a bot (ours included).
    """

    address: str
    text: str
    user: str
    platform: str
    event_id: str | None = None
    message_key: str | None = None
    attachments: tuple[Attachment, ...] = ()
    received_at: float = field(default_factory=time.time)
    raw: Mapping[str, Any] | None = None
    ref: MessageRef | None = None
    direct: bool = False
    mentions_bot: bool = False
    from_bot: bool = False
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class MessageRef:
    """A message a chat adapter sent, so it can be updated or deleted later."""

    address: str
    message_id: str


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A question for a person: may this tool call (kind ``tool``) or this prompt (kind
    ``prompt``, a WAF ``ask``) go ahead? Decided exactly once, by one of ``approvers``
    (empty: anyone in the conversation), before ``expires_at`` (else denied)."""

    permission_id: str
    kind: Literal["tool", "prompt"]
    session_id: str
    address: str | None
    tool: str
    input: Mapping[str, Any]
    reason: str | None
    scopes: tuple[str, ...]
    approvers: tuple[str, ...]
    created_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class ApprovalOutcome:
    """How an :class:`ApprovalRequest` ended: ``allow`` or ``deny`` (by whom, for which
    scope: ``once`` or ``session``, with an optional reason the agent receives), or
    ``expired`` (nobody decided in time; the request is denied)."""

    decision: Literal["allow", "deny", "expired"]
    by: str | None = None
    scope: str = "once"
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ToolRequest:
    """A tool call the agent wants to make, as the provider saw it.

    ``stage`` is ``pre`` for the PreToolUse hook (every tool, read-only ones included) and
    ``permission`` when the CLI itself asks whether to run it.
    """

    stage: Literal["pre", "permission"]
    tool: str
    input: Mapping[str, Any]
    tool_use_id: str | None = None
    reason: str | None = None
    suggestions: tuple[Mapping[str, Any], ...] = ()
    blocked_path: str | None = None


@dataclass(frozen=True, slots=True)
class ToolDecision:
    """The answer to a ToolRequest. At the pre stage, ``defer`` lets the CLI decide by its
    own permission rules and ``ask`` makes it ask (through the permission stage)."""

    behavior: Literal["allow", "deny", "ask", "defer"]
    message: str = ""
    updated_input: Mapping[str, Any] | None = None
    interrupt: bool = False


@dataclass(frozen=True, slots=True)
class AgentStartSpec:
    """Everything a provider needs to start one agent session."""

    session_id: str
    provider_session_id: str
    resume: bool
    work_dir: Path
    state_dir: Path
    env: Mapping[str, str]
    extra_args: tuple[str, ...] = ()
    confinement: Confinement | None = None
    """Resource limits to start the agent under (None: unconfined)."""


def _unchanged(text: str) -> str:
    return text


@dataclass(frozen=True, slots=True)
class ChatCapabilities:
    """What a chat platform can do and the limits it puts on messages; the renderer of
    :mod:`hotplex.chat` stays within them. An adapter declares it as
    ``MessageOperations.capabilities``.

    ``streaming`` is how a reply grows while the agent writes: ``native`` (the platform
    streams: ``start_stream``, then ``append_stream`` with each new part of the text, then
    ``stop_stream``), ``edit`` (``send`` once, then ``update`` with the whole text) or
    ``send`` (nothing until the answer is complete, then ``send``). ``length`` measures text
    the way the platform counts it (code points by default; see
    :func:`hotplex.chat.utf16_length` and :func:`hotplex.chat.utf8_length`).
    ``escape`` turns agent text into text the platform shows literally, so that the agent
    cannot mention everyone (Slack ``<!channel>``, Feishu ``<at user_id="all">``); it must
    work character by character, so that escaping a longer text extends the escape of its
    beginning.
    """

    max_message_length: int = 4000
    """The longest message, in units of ``length``."""
    streaming: Literal["native", "edit", "send"] = "edit"
    min_update_interval: float = 1.0
    """Seconds between two writes (send, update, stream, status) of one renderer."""
    max_writes_per_minute: float | None = None
    """Writes per minute for all the conversations of the adapter together (the platform's
    per-workspace or per-app rate, with a margin); a write that starts a message goes ahead
    of waiting updates. None: no shared limit."""
    write_burst: int = 3
    """Writes that may go at once before ``max_writes_per_minute`` spaces them (a token
    bucket of this size): any minute sees at most ``max_writes_per_minute + write_burst``
    writes, any second at most ``max_writes_per_minute / 60 + write_burst``."""
    threads: bool = False
    buttons: bool = False
    files: bool = False
    reactions: bool = False
    escape: Callable[[str], str] = _unchanged
    length: Callable[[str], int] = len
    stream_lifetime: float | None = None
    """Seconds a native stream lives on the platform (Slack: about 300 from its start);
    the renderer ends an older stream where it is and goes on in a new message with a new
    stream. None: no limit."""

    def __post_init__(self) -> None:
        if self.max_message_length < 64:
            raise ValueError("max_message_length must be at least 64")
        if self.stream_lifetime is not None and self.stream_lifetime <= 0:
            raise ValueError("stream_lifetime must be positive")
        if self.min_update_interval < 0:
            raise ValueError("min_update_interval must not be negative")
        if self.max_writes_per_minute is not None and self.max_writes_per_minute <= 0:
            raise ValueError("max_writes_per_minute must be positive (or None)")
        if self.write_burst < 1:
            raise ValueError("write_burst must be at least 1")
        if self.streaming not in ("native", "edit", "send"):
            raise ValueError(f"streaming {self.streaming!r} is not native, edit or send")
