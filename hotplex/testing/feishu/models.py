"""What the fake Feishu holds and records: users, chats, messages, CardKit entities,
uploaded resources, API calls, event deliveries and long-connection acks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Ack",
    "Call",
    "CardAnswer",
    "CardEntity",
    "CardOp",
    "Chat",
    "Delivery",
    "Message",
    "MessageView",
    "Resource",
    "User",
    "card_elements",
    "card_text",
]

JSON = dict[str, Any]
_TEXT_TAGS = ("markdown", "plain_text", "lark_md")


@dataclass
class User:
    open_id: str
    name: str
    union_id: str
    user_id: str


@dataclass
class Chat:
    chat_id: str
    chat_type: Literal["p2p", "group"]
    members: list[str]
    name: str = ""


@dataclass
class Resource:
    """An image or file: uploaded by the app, or attached to a user's message."""

    key: str
    kind: Literal["image", "file"]
    data: bytes
    file_name: str
    message_ids: set[str] = field(default_factory=set)


@dataclass
class Message:
    """A message as stored; read them through ``FakeFeishu.messages()``."""

    message_id: str
    chat_id: str
    msg_type: str
    content: str  # the JSON string, as sent
    sender_type: Literal["user", "app"]
    sender_id: str
    create_time: float
    root_id: str | None = None
    parent_id: str | None = None
    thread_id: str | None = None
    card_id: str | None = None  # a CardKit entity sent by id
    uuid: str | None = None
    patches: list[float] = field(default_factory=list)
    edits: int = 0
    deleted: bool = False
    ephemeral_to: str | None = None  # an ephemeral card only this open_id sees


@dataclass(frozen=True)
class MessageView:
    """A message with its current content: a card message shows its latest card JSON
    (for a CardKit entity, the entity's current JSON) and ``text`` is its readable text."""

    message_id: str
    chat_id: str
    msg_type: str
    sender_type: str
    sender_id: str
    root_id: str | None
    parent_id: str | None
    thread_id: str | None
    content: JSON
    card: JSON | None
    card_id: str | None
    text: str
    patch_count: int
    deleted: bool
    ephemeral_to: str | None = None


@dataclass(frozen=True)
class CardOp:
    """One accepted CardKit operation."""

    name: str  # card.create, card_element.content, card.settings, card.update, ...
    sequence: int | None
    time: float
    element_id: str | None = None
    content: str | None = None  # the full text of a content update


@dataclass
class CardEntity:
    card_id: str
    card: JSON
    created: float
    sequence: int = 0
    history: list[CardOp] = field(default_factory=list)
    streaming_opened: float | None = None
    sent_message_id: str | None = None
    uuids: dict[str, str] = field(default_factory=dict)

    @property
    def streaming_mode(self) -> bool:
        config = self.card.get("config")
        return bool(isinstance(config, dict) and config.get("streaming_mode"))

    @property
    def update_times(self) -> list[float]:
        """When each operation after the creation was accepted."""
        return [op.time for op in self.history if op.name != "card.create"]

    @property
    def sequences(self) -> list[int]:
        return [op.sequence for op in self.history if op.sequence is not None]

    def element(self, element_id: str) -> JSON | None:
        return next(
            (e for e in card_elements(self.card) if e.get("element_id") == element_id), None
        )

    def element_text(self, element_id: str) -> str | None:
        element = self.element(element_id)
        return None if element is None else str(element.get("content", ""))

    @property
    def text(self) -> str:
        return card_text(self.card)


@dataclass(frozen=True)
class Call:
    """One API request: ``name`` is lark-oapi's resource method (``message.create``,
    ``card_element.content``, ...), ``code`` the answer's code (0 on success)."""

    name: str
    method: str
    path: str
    query: dict[str, str]
    body: Any
    time: float
    status: int
    code: int


@dataclass(frozen=True)
class Delivery:
    """One push of an event or callback: over ``ws`` or by ``webhook`` POST.

    ``status`` is the HTTP status (webhook) or the ack's ``code`` (ws), None when no answer
    came within the ack time; ``answer`` the JSON answer (a callback's toast/card)."""

    event_id: str
    event_type: str
    via: Literal["ws", "webhook"]
    time: float
    status: int | None
    answer: JSON | None
    body: bytes = b""


@dataclass(frozen=True)
class Ack:
    """A long-connection ack frame: the echoed frame with payload ``{"code": ..., "data"?}``."""

    event_id: str
    seq_id: int
    code: int
    data: JSON | None
    headers: tuple[tuple[str, str], ...]
    time: float


@dataclass(frozen=True)
class CardAnswer:
    """The answer to a card click (``{}``, a toast, and/or a new card)."""

    status: int | None
    toast: JSON | None
    card: JSON | None
    raw: JSON | None
    applied: bool  # the answer's card replaced the message's card


def card_elements(card: Any) -> Iterator[JSON]:
    """Every component of a card JSON (nested ones too), in document order."""
    if isinstance(card, dict):
        if "tag" in card:
            yield card
        for value in card.values():
            yield from card_elements(value)
    elif isinstance(card, list):
        for item in card:
            yield from card_elements(item)


def card_text(card: JSON) -> str:
    """The readable text of a card: its markdown and plain-text contents, in order."""
    parts = [
        element["content"]
        for element in card_elements(card)
        if element.get("tag") in _TEXT_TAGS and isinstance(element.get("content"), str)
    ]
    return "\n".join(part for part in parts if part)


def message_text(msg_type: str, content: JSON, card: JSON | None) -> str:
    """The readable text of a message."""
    if card is not None:
        return card_text(card)
    if msg_type == "text":
        return str(content.get("text", ""))
    if msg_type == "post":
        return _post_text(content)
    return ""


def _post_text(content: JSON) -> str:
    body = content
    if "content" not in body:  # {"zh_cn": {"title", "content"}}
        body = next((v for v in content.values() if isinstance(v, dict)), {})
    lines = []
    for paragraph in body.get("content") or []:
        if isinstance(paragraph, list):
            lines.append("".join(str(n.get("text", "")) for n in paragraph if isinstance(n, dict)))
    title = body.get("title")
    return "\n".join(([str(title)] if title else []) + lines)


def loads_object(text: Any) -> JSON | None:
    """``text`` parsed as a JSON object, None when it is not one."""
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
