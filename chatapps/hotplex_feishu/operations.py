"""``MessageOperations`` for Feishu: every reply is an interactive card.

An answer streams through CardKit: ``start_stream`` creates a card entity in streaming
mode and sends it (in the thread, or to the chat); ``append_stream`` puts the whole text so
far into its ``answer`` element with the card's next ``sequence`` (CardKit wants the full
text each time, so it is kept here per message); ``stop_stream`` turns streaming off and
puts the final card (the answer and the footer, no activity line). ``set_status`` writes
the activity line into the ``status`` element of the conversation's streaming card. Other
messages (command answers, refusals) and approval cards are plain cards, changed with
``PATCH im/v1/messages``. Every CardKit operation on one card starts at least
``min_update_interval`` after the previous one ended, like the renderer's writes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotplex.address import Address, AddressLike
from hotplex.chat import utf8_length
from hotplex.interfaces import MessageOperations
from hotplex.types import ApprovalOutcome, ApprovalRequest, ChatCapabilities, MessageRef
from hotplex_feishu.api import FeishuApi
from hotplex_feishu.cards import CardTemplates, card_json, feishu_escape
from hotplex_feishu.files import download_resource, upload

__all__ = ["MAX_TEXT_BYTES", "FeishuOperations"]

log = logging.getLogger(__name__)

#: The longest answer text per card, in UTF-8 bytes: below Feishu's 30 KB card limit with
#: room for the card's JSON, the activity line and JSON escapes.
MAX_TEXT_BYTES = 20_000
#: CardKit ends streaming 10 minutes after it was opened; end ours a minute before.
STREAM_LIFETIME = 540.0
#: Core's shared write budget for the app (rate per minute, burst): Feishu allows an app
#: 50 calls a second and 1000 a minute, and 5 sends a second into one chat; 300 a minute
#: with bursts of 5 keeps any second under 10 writes and any minute under 310.
WRITE_BUDGET = (300.0, 5)
_KEEP = 1000  # cards and approval requests remembered (oldest forgotten first)


@dataclass
class _Card:
    """A reply card sent as a CardKit entity: what it shows and its operation count."""

    card_id: str
    address: str
    text: str
    status: str | None = None
    streaming: bool = True
    sequence: int = 0
    last_op: float = float("-inf")
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _uuid() -> str:
    return uuid.uuid4().hex


class FeishuOperations(MessageOperations):
    def __init__(
        self,
        api: FeishuApi,
        templates: Callable[[], CardTemplates],
        *,
        min_update_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._templates = templates
        self._interval = min_update_interval
        self._clock = clock
        self._caps = ChatCapabilities(
            max_message_length=MAX_TEXT_BYTES,
            streaming="native",
            min_update_interval=min_update_interval,
            max_writes_per_minute=WRITE_BUDGET[0],
            write_burst=WRITE_BUDGET[1],
            stream_lifetime=STREAM_LIFETIME,
            threads=True,
            buttons=True,
            files=True,
            escape=feishu_escape,
            length=utf8_length,
        )
        self._cards: OrderedDict[str, _Card] = OrderedDict()  # message id -> card entity
        self._streaming: dict[str, str] = {}  # address -> message id of its streaming card
        self._status: dict[str, str | None] = {}  # address -> line waiting for a card
        self._requests: OrderedDict[str, ApprovalRequest] = OrderedDict()

    @property
    def capabilities(self) -> ChatCapabilities:
        return self._caps

    def request(self, permission_id: str) -> ApprovalRequest | None:
        """An approval request this process showed (to answer a press with its card)."""
        return self._requests.get(permission_id)

    def templates(self) -> CardTemplates:
        return self._templates()

    # -- posting ----------------------------------------------------------------------------

    async def post(self, address: AddressLike, msg_type: str, content: str) -> str:
        """Post a message: a reply in the address's thread, else to its chat; its id."""
        from lark_oapi.api.im.v1 import (
            CreateMessageRequest,
            CreateMessageRequestBody,
            ReplyMessageRequest,
            ReplyMessageRequestBody,
        )

        where = Address.of(address)
        client = self._api.client
        if where.thread:
            reply = (
                ReplyMessageRequestBody.builder()
                .msg_type(msg_type).content(content).reply_in_thread(True).uuid(_uuid())
                .build()
            )  # fmt: skip
            request: Any = (
                ReplyMessageRequest.builder().message_id(where.thread).request_body(reply).build()
            )
            response = await self._api.call(
                "im.message.reply", lambda o: client.im.v1.message.areply(request, o)
            )
        else:
            body = (
                CreateMessageRequestBody.builder()
                .receive_id(where.channel).msg_type(msg_type).content(content).uuid(_uuid())
                .build()
            )  # fmt: skip
            request = (
                CreateMessageRequest.builder().receive_id_type("chat_id").request_body(body).build()
            )
            response = await self._api.call(
                "im.message.create", lambda o: client.im.v1.message.acreate(request, o)
            )
        return str(response.data.message_id)

    async def _patch(self, message_id: str, card: dict[str, Any]) -> None:
        from lark_oapi.api.im.v1 import PatchMessageRequest, PatchMessageRequestBody

        body = PatchMessageRequestBody.builder().content(card_json(card)).build()
        request = PatchMessageRequest.builder().message_id(message_id).request_body(body).build()
        client = self._api.client
        await self._api.call("im.message.patch", lambda o: client.im.v1.message.apatch(request, o))

    async def send(self, address: AddressLike, text: str) -> MessageRef:
        card = self.templates().reply(text)
        message_id = await self.post(address, "interactive", card_json(card))
        return MessageRef(str(address), message_id)

    async def update(self, ref: MessageRef, text: str) -> None:
        state = self._cards.get(ref.message_id)
        if state is None:  # a plain card (or one sent before a restart)
            await self._patch(ref.message_id, self.templates().reply(text))
            return
        await self._finish(ref, state, text)

    async def delete(self, ref: MessageRef) -> None:
        from lark_oapi.api.im.v1 import DeleteMessageRequest

        request = DeleteMessageRequest.builder().message_id(ref.message_id).build()
        client = self._api.client
        await self._api.call(
            "im.message.delete", lambda o: client.im.v1.message.adelete(request, o)
        )
        self._forget(ref.message_id)

    # -- CardKit streaming ------------------------------------------------------------------

    async def start_stream(self, address: AddressLike, text: str = "") -> MessageRef:
        from lark_oapi.api.cardkit.v1 import CreateCardRequest, CreateCardRequestBody

        key = str(address)
        status = self._status.pop(key, None)
        card = self.templates().reply(text, status=status, streaming=True)
        body = CreateCardRequestBody.builder().type("card_json").data(card_json(card)).build()
        request = CreateCardRequest.builder().request_body(body).build()
        client = self._api.client
        response = await self._api.call(
            "cardkit.card.create", lambda o: client.cardkit.v1.card.acreate(request, o)
        )
        card_id = str(response.data.card_id)
        content = json.dumps({"type": "card", "data": {"card_id": card_id}})
        message_id = await self.post(address, "interactive", content)
        self._remember(message_id, _Card(card_id, key, text, status, last_op=self._clock()))
        self._streaming[key] = message_id
        return MessageRef(key, message_id)

    async def append_stream(self, ref: MessageRef, delta: str) -> None:
        state = self._card(ref)
        if not delta:
            return
        async with state.lock:
            await self._content(state, "answer", state.text + delta)
            state.text += delta

    async def stop_stream(self, ref: MessageRef, delta: str = "") -> None:
        state = self._card(ref)
        await self._finish(ref, state, state.text + delta)

    async def set_status(self, address: AddressLike, status: str | None) -> None:
        key = str(address)
        message_id = self._streaming.get(key)
        state = self._cards.get(message_id) if message_id else None
        if state is None or not state.streaming:
            self._status[key] = status  # shown by the next card of this conversation
            if status is None:
                self._status.pop(key, None)
            return
        async with state.lock:
            if state.streaming and status != state.status:
                await self._content(state, "status", f"⏳ {status}" if status else " ")
                state.status = status

    async def _finish(self, ref: MessageRef, state: _Card, text: str) -> None:
        """Streaming off, then the final card: the text (with the footer), no status."""
        from lark_oapi.api.cardkit.v1 import (
            Card,
            SettingsCardRequest,
            SettingsCardRequestBody,
            UpdateCardRequest,
            UpdateCardRequestBody,
        )

        client = self._api.client
        async with state.lock:
            if state.streaming:
                settings = json.dumps({"config": {"streaming_mode": False}})

                async def close(seq: int) -> None:
                    body = (
                        SettingsCardRequestBody.builder()
                        .settings(settings).sequence(seq).uuid(_uuid()).build()
                    )  # fmt: skip
                    request = (
                        SettingsCardRequest.builder()
                        .card_id(state.card_id)
                        .request_body(body)
                        .build()
                    )
                    await self._api.call(
                        "cardkit.card.settings",
                        lambda o: client.cardkit.v1.card.asettings(request, o),
                    )

                await self._operate(state, close)
                state.streaming = False
                if self._streaming.get(state.address) == ref.message_id:
                    del self._streaming[state.address]
            data = card_json(self.templates().reply(text))

            async def replace(seq: int) -> None:
                card = Card.builder().type("card_json").data(data).build()
                body = (
                    UpdateCardRequestBody.builder().card(card).sequence(seq).uuid(_uuid()).build()
                )
                request = (
                    UpdateCardRequest.builder().card_id(state.card_id).request_body(body).build()
                )
                await self._api.call(
                    "cardkit.card.update", lambda o: client.cardkit.v1.card.aupdate(request, o)
                )

            await self._operate(state, replace)
            state.text, state.status = text, None

    async def _content(self, state: _Card, element: str, content: str) -> None:
        from lark_oapi.api.cardkit.v1 import (
            ContentCardElementRequest,
            ContentCardElementRequestBody,
        )

        client = self._api.client

        async def put(seq: int) -> None:
            body = (
                ContentCardElementRequestBody.builder()
                .content(content or " ").sequence(seq).uuid(_uuid()).build()
            )  # fmt: skip
            request = (
                ContentCardElementRequest.builder()
                .card_id(state.card_id).element_id(element).request_body(body).build()
            )  # fmt: skip
            await self._api.call(
                "cardkit.card_element.content",
                lambda o: client.cardkit.v1.card_element.acontent(request, o),
            )

        await self._operate(state, put)

    async def _operate(self, state: _Card, op: Callable[[int], Any]) -> None:
        """One CardKit operation with the card's next sequence, at least the update
        interval after the previous one ended (a failed one uses its number up too)."""
        wait = state.last_op + self._interval - self._clock()
        if wait > 0:
            await asyncio.sleep(wait)
        state.sequence += 1
        try:
            await op(state.sequence)
        finally:
            state.last_op = self._clock()

    def _card(self, ref: MessageRef) -> _Card:
        state = self._cards.get(ref.message_id)
        if state is None:
            raise LookupError(f"no streaming card {ref.message_id} in this process")
        return state

    def _remember(self, message_id: str, state: _Card) -> None:
        self._cards[message_id] = state
        while len(self._cards) > _KEEP:
            old_id, old = self._cards.popitem(last=False)
            if self._streaming.get(old.address) == old_id:
                del self._streaming[old.address]

    def _forget(self, message_id: str) -> None:
        state = self._cards.pop(message_id, None)
        if state is not None and self._streaming.get(state.address) == message_id:
            del self._streaming[state.address]

    # -- approvals --------------------------------------------------------------------------

    async def ask_approval(self, request: ApprovalRequest) -> MessageRef:
        address = request.address or ""
        card = self.templates().approval(request)
        message_id = await self.post(address, "interactive", card_json(card))
        self._requests[request.permission_id] = request
        while len(self._requests) > _KEEP:
            self._requests.popitem(last=False)
        return MessageRef(address, message_id)

    async def update_approval(
        self, ref: MessageRef, request: ApprovalRequest, outcome: ApprovalOutcome
    ) -> None:
        # the request stays known (bounded): a later press is answered with its card
        await self._patch(ref.message_id, self.templates().approval(request, outcome))

    async def reply_ephemeral(self, address: AddressLike, user: str, text: str) -> None:
        """A card only ``user`` sees (Feishu's ephemeral cards, group chats). The presser of
        a card button also gets the same words as the callback's toast, so a chat where
        ephemeral cards do not work (p2p) loses nothing: it is logged, not posted."""
        open_id = user.partition(":")[2]
        body = {
            "chat_id": Address.of(address).channel,
            "open_id": open_id,
            "msg_type": "interactive",
            "card": self.templates().reply(text),
        }
        try:
            await self._api.raw("ephemeral.send", "POST", "/open-apis/ephemeral/v1/send", body)
        except Exception as exc:  # the toast told them already
            log.info("feishu: no ephemeral card for %s (%s)", user, exc)

    # -- files ------------------------------------------------------------------------------

    async def upload_file(self, address: AddressLike, path: Path, title: str = "") -> MessageRef:
        if title:
            await self.post(address, "interactive", card_json(self.templates().title(title)))
        msg_type, content = await upload(self._api, path)
        message_id = await self.post(address, msg_type, content)
        return MessageRef(str(address), message_id)

    async def download(self, message_id: str, key: str, kind: str) -> bytes:
        """The bytes of a message's image or file (``kind`` ``image`` or ``file``)."""
        return await download_resource(self._api, message_id, key, kind)
