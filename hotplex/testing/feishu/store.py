"""The fake's state and the im.v1 / token rules, free of HTTP: every rule raises
:class:`~hotplex.testing.feishu.limits.FeishuError` with Feishu's code."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from hotplex.testing.feishu import limits as codes
from hotplex.testing.feishu.limits import Clock, FeishuError, Limits, RateWindow
from hotplex.testing.feishu.models import (
    CardEntity,
    Chat,
    Message,
    MessageView,
    Resource,
    User,
    loads_object,
    message_text,
)

__all__ = ["Store", "new_id"]

JSON = dict[str, Any]
_DAY = 86400.0
_MSG_TYPES = ("text", "post", "interactive", "image", "file", "audio", "media", "sticker")


def new_id(prefix: str, size: int = 12) -> str:
    return prefix + secrets.token_hex(size)


@dataclass
class CardToken:
    """A card callback's ``token``: updates that card later, after the callback's answer."""

    message_id: str
    issued: float
    answered: bool = False
    uses: int = 0


@dataclass
class Store:
    """Everything the fake knows; all methods run on the fake's event loop thread."""

    app_id: str
    app_secret: str
    tenant_key: str
    bot_open_id: str
    clock: Clock
    limits: Limits
    users: dict[str, User] = field(default_factory=dict)
    chats: dict[str, Chat] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)
    resources: dict[str, Resource] = field(default_factory=dict)
    cards: dict[str, CardEntity] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (clock)
    card_tokens: dict[str, CardToken] = field(default_factory=dict)  # callback tokens
    _uuids: dict[str, tuple[str, float]] = field(default_factory=dict)
    _chat_rate: RateWindow = field(init=False)
    _patch_rate: RateWindow = field(init=False)

    def __post_init__(self) -> None:
        self._chat_rate = RateWindow(self.limits.chat_messages_per_second)
        self._patch_rate = RateWindow(self.limits.patch_per_second)

    # --- users and chats --------------------------------------------------------------------

    def add_user(self, open_id: str, name: str | None = None) -> User:
        user = self.users.get(open_id)
        if user is None:
            suffix = open_id.removeprefix("ou_")
            user = User(open_id, name or open_id, "on_" + suffix, "u_" + suffix)
            self.users[open_id] = user
        elif name:
            user.name = name
        return user

    def add_chat(self, chat_id: str, chat_type: str, members: list[str], name: str) -> Chat:
        if chat_type not in ("p2p", "group"):
            raise ValueError(f"chat_type must be 'p2p' or 'group', not {chat_type!r}")
        for member in members:
            self.add_user(member)
        chat = Chat(chat_id, "p2p" if chat_type == "p2p" else "group", list(members), name)
        self.chats[chat_id] = chat
        return chat

    def p2p_chat(self, open_id: str) -> Chat:
        """The bot's p2p chat with a user (created on first use)."""
        for chat in self.chats.values():
            if chat.chat_type == "p2p" and chat.members == [open_id]:
                return chat
        return self.add_chat("oc_p2p_" + open_id.removeprefix("ou_"), "p2p", [open_id], "")

    # --- tenant tokens --------------------------------------------------------------------

    def issue_token(self, body: JSON) -> JSON:
        if body.get("app_id") != self.app_id or body.get("app_secret") != self.app_secret:
            raise FeishuError(codes.APP_SECRET_INVALID, "app secret invalid")
        now = self.clock()
        live = [(exp, tok) for tok, exp in self.tokens.items() if exp > now]
        expiry, token = max(live) if live else (0.0, "")
        if not token or expiry - now < self.limits.token_renew_before:
            token, expiry = new_id("t-", 16), now + self.limits.token_expire
            self.tokens[token] = expiry
        return {
            "code": 0,
            "msg": "ok",
            "tenant_access_token": token,
            "expire": max(1, int(expiry - now)),
        }

    def check_token(self, authorization: str | None) -> None:
        if not authorization or not authorization.startswith("Bearer "):
            raise FeishuError(codes.TOKEN_MISSING, "Missing access token for authorization.")
        expiry = self.tokens.get(authorization.removeprefix("Bearer ").strip())
        if expiry is None or expiry <= self.clock():
            raise FeishuError(codes.TOKEN_INVALID, "Invalid access token for authorization.")

    def expire_tokens(self) -> None:
        self.tokens.clear()

    # --- messages -------------------------------------------------------------------------

    def message(self, message_id: str) -> Message:
        message = self.messages.get(message_id)
        if message is None:
            raise FeishuError(codes.INVALID_PARAM, f"message {message_id} not found")
        if message.deleted:
            raise FeishuError(codes.MESSAGE_RECALLED, "message has been recalled")
        return message

    def send(self, receive_id_type: str, body: JSON) -> JSON:
        receive_id = str(body.get("receive_id") or "")
        if receive_id_type == "chat_id":
            chat = self.chats.get(receive_id)
            if chat is None:
                raise FeishuError(codes.BOT_NOT_IN_CHAT, "Bot is not in the chat.")
        elif receive_id_type == "open_id":
            if receive_id not in self.users:
                raise FeishuError(codes.INVALID_PARAM, f"unknown open_id {receive_id}")
            chat = self.p2p_chat(receive_id)
        else:
            raise FeishuError(
                codes.INVALID_PARAM, f"unsupported receive_id_type {receive_id_type!r}"
            )
        return self._post(chat.chat_id, body, parent=None, in_thread=False)

    def reply(self, message_id: str, body: JSON) -> JSON:
        parent = self.message(message_id)
        return self._post(
            parent.chat_id, body, parent=parent, in_thread=bool(body.get("reply_in_thread"))
        )

    def _post(self, chat_id: str, body: JSON, *, parent: Message | None, in_thread: bool) -> JSON:
        now = self.clock()
        uuid = body.get("uuid")
        if isinstance(uuid, str) and uuid:
            seen = self._uuids.get(uuid)
            if seen and now - seen[1] < self.limits.uuid_seconds:
                return self.message_json(self.messages[seen[0]])
        msg_type, content = self._checked_content(body)
        card_id = self._card_reference(content) if msg_type == "interactive" else None
        if not self._chat_rate.hit(chat_id, now):
            raise FeishuError(codes.MESSAGE_RATE_LIMITED, "request trigger frequency limit")
        message = Message(
            new_id("om_"),
            chat_id,
            msg_type,
            str(body["content"]),
            "app",
            self.app_id,
            now,
            card_id=card_id,
            uuid=uuid if isinstance(uuid, str) and uuid else None,
        )
        if parent is not None:
            message.root_id = parent.root_id or parent.message_id
            message.parent_id = parent.message_id
            message.thread_id = parent.thread_id
            if in_thread and message.thread_id is None:
                message.thread_id = new_id("omt_", 8)
                root = self.messages.get(message.root_id)
                if root is not None:
                    root.thread_id = message.thread_id
        if card_id is not None:
            self.cards[card_id].sent_message_id = message.message_id
        self.messages[message.message_id] = message
        self.link_resources(message.message_id, loads_object(message.content) or {})
        if message.uuid:
            self._uuids[message.uuid] = (message.message_id, now)
        return self.message_json(message)

    def _checked_content(self, body: JSON) -> tuple[str, JSON]:
        msg_type = body.get("msg_type")
        if msg_type not in _MSG_TYPES:
            raise FeishuError(codes.INVALID_PARAM, f"invalid msg_type {msg_type!r}")
        raw = body.get("content")
        content = loads_object(raw)
        if content is None:
            raise FeishuError(codes.INVALID_PARAM, "content must be a JSON object in a string")
        size = len(str(raw).encode("utf-8"))
        limit = self.limits.text_bytes if msg_type == "text" else self.limits.card_bytes
        if size > limit:
            raise FeishuError(codes.CONTENT_TOO_LONG, f"content is {size} bytes, limit {limit}")
        if msg_type == "text" and not isinstance(content.get("text"), str):
            raise FeishuError(codes.INVALID_PARAM, "text content needs a 'text' string")
        for kind, key in (("image", "image_key"), ("file", "file_key")):
            if msg_type == kind and content.get(key) not in self.resources:
                raise FeishuError(codes.INVALID_PARAM, f"unknown {key}")
        return str(msg_type), content

    def _card_reference(self, content: JSON) -> str | None:
        if content.get("type") != "card":
            if content.get("type") is None and content.get("schema") not in (None, "2.0"):
                raise FeishuError(codes.CARD_CONTENT_FAILED, "unsupported card schema")
            return None
        data = content.get("data")
        card_id = data.get("card_id") if isinstance(data, dict) else None
        card = self.cards.get(str(card_id))
        if card is None:
            raise FeishuError(codes.CARD_CONTENT_FAILED, f"card entity {card_id} not found")
        if card.sent_message_id is not None:
            raise FeishuError(codes.CARD_CONTENT_FAILED, "a card entity can be sent only once")
        if self.clock() - card.created > self.limits.card_entity_days * _DAY:
            raise FeishuError(codes.CARD_EXPIRED, "card entity expired")
        return card.card_id

    def patch(self, message_id: str, body: JSON) -> JSON:
        message = self.message(message_id)
        now = self.clock()
        if message.msg_type != "interactive" or message.sender_type != "app":
            raise FeishuError(codes.INVALID_PARAM, "only the app's card messages can be patched")
        if now - message.create_time > self.limits.message_patch_days * _DAY:
            raise FeishuError(codes.MESSAGE_TOO_OLD, "the message is too old to update")
        raw = body.get("content")
        card = loads_object(raw)
        if card is None:
            raise FeishuError(codes.INVALID_PARAM, "content must be a card JSON string")
        size = len(str(raw).encode("utf-8"))
        if size > self.limits.card_bytes:
            raise FeishuError(codes.CONTENT_TOO_LONG, f"card is {size} bytes")
        config = card.get("config")
        multi = config.get("update_multi") if isinstance(config, dict) else None
        if card.get("schema") != "2.0" and multi is not True:
            raise FeishuError(
                codes.INVALID_PARAM, "a card must set config.update_multi to be updated"
            )
        if not self._patch_rate.hit(message_id, now):
            raise FeishuError(codes.MESSAGE_RATE_LIMITED, "request trigger frequency limit")
        message.content = str(raw)
        message.card_id = None
        message.patches.append(now)
        return {}

    def edit(self, message_id: str, body: JSON) -> JSON:
        message = self.message(message_id)
        if message.msg_type not in ("text", "post") or body.get("msg_type") not in ("text", "post"):
            raise FeishuError(codes.INVALID_PARAM, "only text and post messages can be edited")
        if message.edits >= self.limits.edits_per_message:
            raise FeishuError(codes.EDIT_LIMIT, "the message reached its edit limit")
        msg_type, _ = self._checked_content(body)
        message.msg_type, message.content = msg_type, str(body["content"])
        message.edits += 1
        return self.message_json(message)

    def recall(self, message_id: str) -> JSON:
        self.message(message_id).deleted = True
        return {}

    def delayed_update(self, body: JSON) -> JSON:
        """``interactive/v1/card/update``: replace a clicked card with the callback's token."""
        token = self.card_tokens.get(str(body.get("token") or ""))
        now = self.clock()
        if token is None or now - token.issued > self.limits.card_token_seconds:
            raise FeishuError(codes.CARD_TOKEN_INVALID, "the card token is invalid or expired")
        if not token.answered:
            raise FeishuError(codes.CARD_TOKEN_INVALID, "answer the callback before updating")
        if token.uses >= self.limits.card_token_uses:
            raise FeishuError(codes.CARD_TOKEN_INVALID, "the card token was used up")
        card = body.get("card")
        if not isinstance(card, dict):
            raise FeishuError(codes.INVALID_PARAM, "card must be a card JSON object")
        content = json.dumps(card, ensure_ascii=False)
        if len(content.encode("utf-8")) > self.limits.card_bytes:
            raise FeishuError(codes.CONTENT_TOO_LONG, "the card exceeds 30 KB")
        message = self.message(token.message_id)
        token.uses += 1
        message.content, message.card_id = content, None
        return {}

    def ephemeral(self, body: JSON) -> JSON:
        """An ephemeral card: shown in a group chat to one member only."""
        chat = self.chats.get(str(body.get("chat_id") or ""))
        if chat is None:
            raise FeishuError(codes.BOT_NOT_IN_CHAT, "Bot is not in the chat.")
        if chat.chat_type != "group":
            raise FeishuError(codes.INVALID_PARAM, "ephemeral cards are for group chats")
        open_id = body.get("open_id")
        if not isinstance(open_id, str) or open_id not in self.users:
            raise FeishuError(codes.INVALID_PARAM, "open_id must name a user")
        if chat.members and open_id not in chat.members:
            raise FeishuError(codes.INVALID_PARAM, "the user is not in the chat")
        card = body.get("card")
        if body.get("msg_type") != "interactive" or not isinstance(card, dict):
            raise FeishuError(codes.INVALID_PARAM, "an ephemeral message is an interactive card")
        content = json.dumps(card, ensure_ascii=False)
        if len(content.encode("utf-8")) > self.limits.card_bytes:
            raise FeishuError(codes.CONTENT_TOO_LONG, "the card exceeds 30 KB")
        message = Message(
            new_id("om_"),
            chat.chat_id,
            "interactive",
            content,
            "app",
            self.app_id,
            self.clock(),
            ephemeral_to=open_id,
        )
        self.messages[message.message_id] = message
        return {"message_id": message.message_id}

    def delete_ephemeral(self, body: JSON) -> JSON:
        message = self.message(str(body.get("message_id") or ""))
        if message.ephemeral_to is None:
            raise FeishuError(codes.INVALID_PARAM, "not an ephemeral message")
        message.deleted = True
        return {}

    def message_json(self, message: Message) -> JSON:
        return {
            "message_id": message.message_id,
            "root_id": message.root_id,
            "parent_id": message.parent_id,
            "thread_id": message.thread_id,
            "msg_type": message.msg_type,
            "create_time": str(int(message.create_time * 1000)),
            "update_time": str(int((message.patches or [message.create_time])[-1] * 1000)),
            "deleted": message.deleted,
            "chat_id": message.chat_id,
            "sender": {
                "id": message.sender_id,
                "id_type": "app_id" if message.sender_type == "app" else "open_id",
                "sender_type": message.sender_type,
                "tenant_key": self.tenant_key,
            },
            "body": {"content": message.content},
            "mentions": [],
        }

    def view(self, message: Message) -> MessageView:
        content = loads_object(message.content) or {}
        card: JSON | None = None
        if message.card_id is not None and message.card_id in self.cards:
            card = self.cards[message.card_id].card
        elif message.msg_type == "interactive":
            card = content
        return MessageView(
            message.message_id,
            message.chat_id,
            message.msg_type,
            message.sender_type,
            message.sender_id,
            message.root_id,
            message.parent_id,
            message.thread_id,
            content,
            json.loads(json.dumps(card)) if card is not None else None,
            message.card_id,
            message_text(message.msg_type, content, card),
            len(message.patches),
            message.deleted,
            message.ephemeral_to,
        )

    # --- resources ------------------------------------------------------------------------

    def upload(self, kind: str, data: bytes, file_name: str) -> Resource:
        limit = self.limits.image_bytes if kind == "image" else self.limits.file_bytes
        if not data:
            raise FeishuError(codes.RESOURCE_INVALID, f"the {kind} is empty")
        if len(data) > limit:
            raise FeishuError(codes.RESOURCE_TOO_LARGE, f"the {kind} exceeds {limit} bytes")
        key = new_id("img_v3_" if kind == "image" else "file_v3_", 10)
        resource = Resource(key, "image" if kind == "image" else "file", data, file_name)
        self.resources[key] = resource
        return resource

    def link_resources(self, message_id: str, content: Any) -> None:
        """Let ``message_id`` serve the images and files its content names."""
        if isinstance(content, dict):
            for key, value in content.items():
                if key in ("image_key", "file_key") and value in self.resources:
                    self.resources[value].message_ids.add(message_id)
                else:
                    self.link_resources(message_id, value)
        elif isinstance(content, list):
            for item in content:
                self.link_resources(message_id, item)

    def download(self, message_id: str, key: str, kind: str | None) -> Resource:
        self.message(message_id)
        if kind not in ("image", "file"):
            raise FeishuError(codes.RESOURCE_INVALID, "type must be image or file")
        resource = self.resources.get(key)
        if resource is None or message_id not in resource.message_ids:
            raise FeishuError(codes.RESOURCE_NOT_IN_MESSAGE, "the resource is not in this message")
        return resource
