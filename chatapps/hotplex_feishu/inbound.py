"""Feishu's ``im.message.receive_v1`` event as core's ``IncomingMessage``.

Addresses are ``feishu:<tenant key>/<chat id>[/<root message id>]``. A p2p chat is one
conversation (a reply inside a thread there gets the thread's root); in a group, a message
starts the thread it roots (or continues the one it is in), and the bot answers inside it.
The bot listens in a group thread once it was mentioned there: later messages of that
thread count as addressed to it (``mentions_bot``), so core's ``mention`` group policy
answers them without a new @. Event id and message id are the dedup keys core stores.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from hotplex.address import Address
from hotplex.types import Attachment, IncomingMessage, MessageRef

__all__ = ["Download", "ThreadMemory", "message_text", "to_message"]

#: ``download(message_id, key, kind)``: the bytes of a message resource.
Download = Callable[[str, str, str], Awaitable[bytes]]


class ThreadMemory:
    """Group threads the bot was mentioned in (most recent kept, bounded)."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._threads: OrderedDict[tuple[str, str], None] = OrderedDict()

    def add(self, chat: str, root: str) -> None:
        self._threads[(chat, root)] = None
        self._threads.move_to_end((chat, root))
        while len(self._threads) > self._size:
            self._threads.popitem(last=False)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._threads


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _post_parts(content: Mapping[str, Any]) -> tuple[str, list[list[dict[str, Any]]]]:
    """Title and paragraphs of a ``post``, localized (``{"zh_cn": {...}}``) or not."""
    body: Mapping[str, Any] = content
    if "content" not in content:
        for value in content.values():
            if isinstance(value, dict) and "content" in value:
                body = value
                break
    paragraphs = body.get("content") or []
    rows = [[_dict(e) for e in row] for row in paragraphs if isinstance(row, list)]
    return str(body.get("title") or ""), rows


def message_text(
    message_type: str, content: Mapping[str, Any], mentions: Mapping[str, str | None]
) -> tuple[str, list[tuple[str, str, str]]]:
    """The text of a message and its resources ``(kind, key, name)``. ``mentions`` maps a
    placeholder (``@_user_1``) to the name to show, or None for the bot (removed)."""

    def mention(key: str) -> str:
        name = mentions.get(key, key)
        return "" if name is None else f"@{name}"

    resources: list[tuple[str, str, str]] = []
    if message_type == "text":
        text = str(content.get("text") or "")
        for key in sorted(mentions, key=len, reverse=True):  # @_user_10 before @_user_1
            text = text.replace(key, mention(key))
        return re.sub(r"[ \t]{2,}", " ", text).strip(), resources
    if message_type == "image":
        key = str(content.get("image_key") or "")
        return "", [("image", key, f"{key}.png")] if key else []
    if message_type in ("file", "media", "audio"):
        key = str(content.get("file_key") or "")
        name = str(content.get("file_name") or key)
        return "", [("file", key, name)] if key else []
    if message_type == "post":
        title, rows = _post_parts(content)
        lines = [title] if title else []
        for row in rows:
            line = ""
            for element in row:
                tag = element.get("tag")
                if tag in ("text", "a"):
                    line += str(element.get("text") or "")
                elif tag == "at":
                    key = str(element.get("user_id") or "")
                    line += mention(key) if key in mentions else f"@{element.get('user_name', '')}"
                elif tag == "code_block":
                    code = str(element.get("text") or "")
                    line += f"\n```{element.get('language', '') or ''}\n{code}\n```\n"
                elif tag == "img" and element.get("image_key"):
                    key = str(element["image_key"])
                    resources.append(("image", key, f"{key}.png"))
                elif tag == "media" and element.get("file_key"):
                    key = str(element["file_key"])
                    resources.append(("file", key, str(element.get("file_name") or key)))
            lines.append(line.strip())
        return "\n".join(lines).strip(), resources
    return "", resources


def to_message(
    envelope: Mapping[str, Any],
    *,
    bot_open_id: str,
    threads: ThreadMemory,
    download: Download,
) -> IncomingMessage | None:
    """The message of an ``im.message.receive_v1`` envelope (v2: ``header`` and ``event``);
    None for a message with nothing the agent can read (a sticker, a shared chat)."""
    header = _dict(envelope.get("header"))
    event = _dict(envelope.get("event"))
    message = _dict(event.get("message"))
    sender = _dict(event.get("sender"))
    message_id = str(message.get("message_id") or "")
    chat_id = str(message.get("chat_id") or "")
    if not message_id or not chat_id:
        return None
    tenant = str(header.get("tenant_key") or sender.get("tenant_key") or "tenant")
    try:
        content = _dict(json.loads(str(message.get("content") or "{}")))
    except ValueError:
        content = {}
    names: dict[str, str | None] = {}
    mentions_bot = False
    for entry in message.get("mentions") or []:
        entry = _dict(entry)
        key = str(entry.get("key") or "")
        is_bot = _dict(entry.get("id")).get("open_id") == bot_open_id
        mentions_bot = mentions_bot or is_bot
        if key:
            names[key] = None if is_bot else str(entry.get("name") or key)
    text, resources = message_text(str(message.get("message_type") or ""), content, names)
    if not text and not resources:
        return None
    root = str(message.get("root_id") or "") or None
    direct = message.get("chat_type") == "p2p"
    if direct:
        thread = root
    else:
        thread = root or message_id
        if mentions_bot:
            threads.add(chat_id, thread)
        elif (chat_id, thread) in threads:
            mentions_bot = True  # the bot answers within a thread it was called into
    address = str(Address("feishu", tenant, chat_id, thread))
    sender_id = _dict(sender.get("sender_id"))
    user = str(sender_id.get("open_id") or sender_id.get("user_id") or "unknown")

    def fetch(kind: str, key: str) -> Callable[[], Awaitable[bytes]]:
        return lambda: download(message_id, key, kind)

    attachments = tuple(
        Attachment(name=name, size=None, mime=None, kind="image" if kind == "image" else "file",
                   download=fetch(kind, key), url=f"feishu:{message_id}/{key}")
        for kind, key, name in resources
    )  # fmt: skip
    event_id = header.get("event_id")
    return IncomingMessage(
        address=address,
        text=text,
        user=f"feishu:{user}",
        platform="feishu",
        event_id=f"feishu:{event_id}" if event_id else None,
        message_key=f"feishu:{message_id}",
        attachments=attachments,
        ref=MessageRef(address, message_id),
        direct=direct,
        mentions_bot=mentions_bot,
        from_bot=sender.get("sender_type") not in (None, "user"),
    )
