"""Event and callback payloads as Feishu sends them (schema 2.0), and their webhook form.

- :func:`envelope`: ``{"schema": "2.0", "header": {event_id, token, create_time, event_type,
  tenant_key, app_id}, "event": {...}}``;
- :func:`message_event`: the ``event`` of ``im.message.receive_v1``;
- :func:`card_action_event`: the ``event`` of the ``card.action.trigger`` callback;
- :func:`webhook_body`: the HTTP body and headers of a push (encrypted and signed when the
  app has an Encrypt Key).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any

from hotplex.testing.feishu.crypto import encrypt, signed_headers
from hotplex.testing.feishu.models import Chat, Message, User

__all__ = [
    "card_action_event",
    "envelope",
    "mention",
    "message_event",
    "url_verification",
    "webhook_body",
]

JSON = dict[str, Any]


def envelope(
    event_type: str,
    event: JSON,
    *,
    app_id: str,
    tenant_key: str,
    token: str,
    create_time: str,
    event_id: str | None = None,
) -> JSON:
    return {
        "schema": "2.0",
        "header": {
            "event_id": event_id or secrets.token_hex(16),
            "token": token,
            "create_time": create_time,
            "event_type": event_type,
            "tenant_key": tenant_key,
            "app_id": app_id,
        },
        "event": event,
    }


def _user_id(user: User) -> JSON:
    return {"union_id": user.union_id, "user_id": user.user_id, "open_id": user.open_id}


def mention(index: int, user: User, tenant_key: str) -> JSON:
    """The ``mentions[]`` item for ``@_user_<index>``."""
    return {
        "key": f"@_user_{index}",
        "id": _user_id(user),
        "name": user.name,
        "tenant_key": tenant_key,
    }


def message_event(
    message: Message,
    *,
    chat: Chat,
    sender: User,
    tenant_key: str,
    mentions: Sequence[JSON] = (),
) -> JSON:
    created = str(int(message.create_time * 1000))
    body: JSON = {
        "message_id": message.message_id,
        "root_id": message.root_id or "",
        "parent_id": message.parent_id or "",
        "create_time": created,
        "update_time": created,
        "chat_id": chat.chat_id,
        "chat_type": chat.chat_type,
        "message_type": message.msg_type,
        "content": message.content,
        "mentions": list(mentions),
    }
    if message.thread_id:
        body["thread_id"] = message.thread_id
    return {
        "sender": {"sender_id": _user_id(sender), "sender_type": "user", "tenant_key": tenant_key},
        "message": body,
    }


def card_action_event(
    *,
    operator: User,
    tenant_key: str,
    message_id: str,
    chat_id: str,
    value: JSON,
    tag: str = "button",
    name: str | None = None,
    form_value: JSON | None = None,
    input_value: str | None = None,
) -> JSON:
    action: JSON = {"value": value, "tag": tag}
    if name is not None:
        action["name"] = name
    if form_value is not None:
        action["form_value"] = form_value
    if input_value is not None:
        action["input_value"] = input_value
    return {
        "operator": {"tenant_key": tenant_key, **_user_id(operator)},
        "token": "c-" + secrets.token_hex(16),
        "action": action,
        "host": "im_message",
        "context": {"open_message_id": message_id, "open_chat_id": chat_id},
    }


def url_verification(token: str, challenge: str | None = None) -> JSON:
    return {
        "challenge": challenge or secrets.token_hex(12),
        "token": token,
        "type": "url_verification",
    }


def webhook_body(
    payload: JSON,
    *,
    encrypt_key: str,
    timestamp: str,
    nonce: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The POST body (``{"encrypt": ...}`` when ``encrypt_key`` is set) and its headers
    (``Content-Type`` plus the three signature headers when ``encrypt_key`` is set)."""
    plain = json.dumps(payload, ensure_ascii=False)
    if encrypt_key:
        body = json.dumps({"encrypt": encrypt(encrypt_key, plain)}).encode("utf-8")
        headers = signed_headers(encrypt_key, body, timestamp=timestamp, nonce=nonce)
    else:
        body, headers = plain.encode("utf-8"), {}
    return body, {"Content-Type": "application/json; charset=utf-8", **headers}
