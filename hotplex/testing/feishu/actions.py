"""What users do in the fake: send a message (text, mentions, image, file, in a thread) and
see a card click answered."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hotplex.testing.feishu import events
from hotplex.testing.feishu.models import CardAnswer, Delivery, Message
from hotplex.testing.feishu.store import Store, new_id

__all__ = ["apply_card_answer", "user_message_event"]

JSON = dict[str, Any]


def user_message_event(
    store: Store,
    chat_id: str,
    sender_open_id: str,
    text: str,
    *,
    mention_bot: bool,
    mentions: Sequence[str],
    root_id: str | None,
    parent_id: str | None,
    image: bytes | None,
    file: tuple[str, bytes] | None,
    now: float,
) -> JSON:
    """Store the message and return the ``event`` of its ``im.message.receive_v1``.

    Mentions come first in the text as ``@_user_N`` (the bot is ``@_user_1`` when
    mentioned); an image with text makes a ``post``; a reply (``parent_id``/``root_id``)
    joins the thread of its parent or root."""
    chat = store.chats.get(chat_id)
    if chat is None:
        raise KeyError(f"unknown chat {chat_id!r}: add_chat() or p2p_chat() first")
    sender = store.add_user(sender_open_id)
    tagged = [store.users[store.bot_open_id]] if mention_bot else []
    tagged += [store.add_user(open_id) for open_id in mentions]
    items = [events.mention(i, user, store.tenant_key) for i, user in enumerate(tagged, 1)]
    keys = [str(item["key"]) for item in items]
    msg_type, content = _content(store, text, keys, image, file)
    message = Message(
        new_id("om_"),
        chat_id,
        msg_type,
        json.dumps(content, ensure_ascii=False),
        "user",
        sender_open_id,
        now,
    )
    if root_id or parent_id:
        parent = store.message(str(parent_id or root_id))
        message.parent_id = parent.message_id
        message.root_id = root_id or parent.root_id or parent.message_id
        root = store.messages.get(message.root_id)
        message.thread_id = parent.thread_id or (root.thread_id if root else None)
    store.messages[message.message_id] = message
    store.link_resources(message.message_id, content)
    return events.message_event(
        message, chat=chat, sender=sender, tenant_key=store.tenant_key, mentions=items
    )


def _content(
    store: Store,
    text: str,
    keys: list[str],
    image: bytes | None,
    file: tuple[str, bytes] | None,
) -> tuple[str, JSON]:
    if file is not None:
        if text or image is not None:
            raise ValueError("a file message carries nothing else")
        resource = store.upload("file", file[1], file[0])
        return "file", {"file_key": resource.key, "file_name": file[0]}
    if image is None:
        return "text", {"text": " ".join([*keys, text]) if keys else text}
    key = store.upload("image", image, "image.png").key
    if not text and not keys:
        return "image", {"image_key": key}
    line: list[JSON] = [{"tag": "at", "user_id": k, "user_name": ""} for k in keys]
    line.append({"tag": "text", "text": text})
    return "post", {"title": "", "content": [line, [{"tag": "img", "image_key": key}]]}


def apply_card_answer(store: Store, message_id: str, delivery: Delivery) -> CardAnswer:
    """Read a callback's answer; its ``card`` replaces the message's card unless that card
    is a CardKit entity still in streaming mode (Feishu cannot update it then)."""
    raw = delivery.answer
    toast = raw.get("toast") if raw else None
    card = raw.get("card") if raw else None
    applied = False
    message = store.messages[message_id]
    entity = store.cards.get(message.card_id) if message.card_id else None
    streaming = entity is not None and entity.streaming_mode
    if isinstance(card, dict) and isinstance(card.get("data"), dict) and not streaming:
        message.content = json.dumps(card["data"] if card.get("type") == "raw" else card)
        message.card_id = None
        applied = True
    return CardAnswer(
        delivery.status,
        toast if isinstance(toast, dict) else None,
        card if isinstance(card, dict) else None,
        raw,
        applied,
    )
