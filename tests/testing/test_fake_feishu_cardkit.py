"""CardKit entities in the fake: streaming text with sequences, settings, element ops, the
per-card rate and the 10-minute streaming timeout, driven by the real lark-oapi client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fake_feishu_kit import forget_token, lark_client
from lark_oapi.api.cardkit.v1 import (
    Card,
    ContentCardElementRequest,
    ContentCardElementRequestBody,
    CreateCardElementRequest,
    CreateCardElementRequestBody,
    CreateCardRequest,
    CreateCardRequestBody,
    DeleteCardElementRequest,
    DeleteCardElementRequestBody,
    PatchCardElementRequest,
    PatchCardElementRequestBody,
    SettingsCardRequest,
    SettingsCardRequestBody,
    UpdateCardElementRequest,
    UpdateCardElementRequestBody,
    UpdateCardRequest,
    UpdateCardRequestBody,
)
from lark_oapi.api.im.v1 import (
    CreateMessageRequest,
    CreateMessageRequestBody,
)

from hotplex.testing.feishu import FakeFeishu, ManualClock

STREAMING_CARD = {
    "schema": "2.0",
    "config": {"streaming_mode": True, "summary": {"content": "[Generating]"}},
    "body": {"elements": [{"tag": "markdown", "content": "", "element_id": "md"}]},
}


def build(builder: Any, **fields: Any) -> Any:
    for name, value in fields.items():
        builder = getattr(builder, name)(value)
    return builder.build()


class Cards:
    """The CardKit calls of one lark client, answering the response code."""

    def __init__(self, client: Any) -> None:
        self.v1 = client.cardkit.v1

    async def create(self, card: dict[str, Any] | str) -> Any:
        data = card if isinstance(card, str) else json.dumps(card)
        body = build(CreateCardRequestBody.builder(), type="card_json", data=data)
        return await self.v1.card.acreate(CreateCardRequest.builder().request_body(body).build())

    async def content(
        self, card_id: str, text: str, sequence: int, element: str = "md", **kw: Any
    ) -> int:
        body = build(ContentCardElementRequestBody.builder(), content=text, sequence=sequence, **kw)
        request = build(
            ContentCardElementRequest.builder(),
            card_id=card_id,
            element_id=element,
            request_body=body,
        )
        return int((await self.v1.card_element.acontent(request)).code)

    async def settings(self, card_id: str, config: dict[str, Any], sequence: int) -> int:
        body = build(
            SettingsCardRequestBody.builder(),
            settings=json.dumps({"config": config}),
            sequence=sequence,
        )
        request = build(SettingsCardRequest.builder(), card_id=card_id, request_body=body)
        return int((await self.v1.card.asettings(request)).code)

    async def update(self, card_id: str, card: dict[str, Any], sequence: int) -> int:
        wrapped = build(Card.builder(), type="card_json", data=json.dumps(card))
        body = build(UpdateCardRequestBody.builder(), card=wrapped, sequence=sequence)
        request = build(UpdateCardRequest.builder(), card_id=card_id, request_body=body)
        return int((await self.v1.card.aupdate(request)).code)

    async def add(
        self, card_id: str, elements: list[dict[str, Any]], sequence: int, **kw: Any
    ) -> int:
        body = build(
            CreateCardElementRequestBody.builder(),
            elements=json.dumps(elements),
            sequence=sequence,
            **kw,
        )
        request = build(CreateCardElementRequest.builder(), card_id=card_id, request_body=body)
        return int((await self.v1.card_element.acreate(request)).code)

    async def replace(
        self, card_id: str, element_id: str, element: dict[str, Any], sequence: int
    ) -> int:
        body = build(
            UpdateCardElementRequestBody.builder(), element=json.dumps(element), sequence=sequence
        )
        request = build(
            UpdateCardElementRequest.builder(),
            card_id=card_id,
            element_id=element_id,
            request_body=body,
        )
        return int((await self.v1.card_element.aupdate(request)).code)

    async def patch(
        self, card_id: str, element_id: str, partial: dict[str, Any], sequence: int
    ) -> int:
        body = build(
            PatchCardElementRequestBody.builder(),
            partial_element=json.dumps(partial),
            sequence=sequence,
        )
        request = build(
            PatchCardElementRequest.builder(),
            card_id=card_id,
            element_id=element_id,
            request_body=body,
        )
        return int((await self.v1.card_element.apatch(request)).code)

    async def delete(self, card_id: str, element_id: str, sequence: int) -> int:
        body = build(DeleteCardElementRequestBody.builder(), sequence=sequence)
        request = build(
            DeleteCardElementRequest.builder(),
            card_id=card_id,
            element_id=element_id,
            request_body=body,
        )
        return int((await self.v1.card_element.adelete(request)).code)


@pytest.fixture
async def fs() -> AsyncIterator[FakeFeishu]:
    async with FakeFeishu(clock=ManualClock()) as fake:
        fake.add_chat("oc_g", "group", members=["ou_alice"])
        yield fake


def tick(fs: FakeFeishu, seconds: float = 0.2) -> None:
    assert isinstance(fs.clock, ManualClock)
    fs.clock.advance(seconds)


async def send_card(client: Any, card_id: str) -> Any:
    content = json.dumps({"type": "card", "data": {"card_id": card_id}})
    body = build(
        CreateMessageRequestBody.builder(),
        receive_id="oc_g",
        msg_type="interactive",
        content=content,
    )
    request = build(CreateMessageRequest.builder(), receive_id_type="chat_id", request_body=body)
    return await client.im.v1.message.acreate(request)


async def test_a_streamed_reply_shows_the_latest_full_text(fs: FakeFeishu) -> None:
    client = lark_client(fs)
    cards = Cards(client)
    created = await cards.create(STREAMING_CARD)
    assert created.code == 0
    card_id = created.data.card_id
    sent = await send_card(client, card_id)
    assert sent.code == 0
    message_id = sent.data.message_id
    for sequence, text in enumerate(["Hel", "Hello", "Hello, world"], 1):
        assert await cards.content(card_id, text, sequence) == 0
        tick(fs)
        assert fs.message(message_id).text == text
    assert await cards.settings(card_id, {"streaming_mode": False}, 4) == 0
    entity = fs.cards[card_id]
    assert not entity.streaming_mode and entity.sequences == [1, 2, 3, 4]
    assert [op.content for op in entity.history if op.name == "card_element.content"] == [
        "Hel",
        "Hello",
        "Hello, world",
    ]
    assert len(entity.update_times) == 4
    assert await cards.content(card_id, "more", 5) == 300309  # streaming is closed
    assert fs.messages("oc_g")[0].card_id == card_id
    assert (await send_card(client, card_id)).code == 230099  # sendable once


async def test_sequences_must_increase_across_all_operations(fs: FakeFeishu) -> None:
    cards = Cards(lark_client(fs))
    card_id = (await cards.create(STREAMING_CARD)).data.card_id
    assert await cards.content(card_id, "a", 5) == 0
    tick(fs)
    assert await cards.content(card_id, "b", 5) == 300317
    assert await cards.settings(card_id, {"summary": {"content": "x"}}, 4) == 300317
    assert await cards.content(card_id, "c", 6) == 0
    assert await cards.content(card_id, "", 7) == 230001  # 1..100000 characters
    assert await cards.content(card_id, "d", 7, element="nope") == 300307
    assert fs.cards[card_id].element_text("md") == "c"


async def test_a_uuid_makes_an_operation_idempotent(fs: FakeFeishu) -> None:
    cards = Cards(lark_client(fs))
    card_id = (await cards.create(STREAMING_CARD)).data.card_id
    assert await cards.content(card_id, "once", 1, uuid="op-1") == 0
    assert await cards.content(card_id, "once", 2, uuid="op-1") == 0  # a retry: no effect
    assert fs.cards[card_id].sequences == [1]
    assert await cards.settings(card_id, {"streaming_mode": False}, 3) == 0
    body = build(SettingsCardRequestBody.builder(), settings="{}", sequence=4, uuid="op-1")
    request = build(SettingsCardRequest.builder(), card_id=card_id, request_body=body)
    assert (await lark_client(fs).cardkit.v1.card.asettings(request)).code == 200770


async def test_at_most_ten_operations_per_second_per_card(fs: FakeFeishu) -> None:
    cards = Cards(lark_client(fs))
    card_id = (await cards.create(STREAMING_CARD)).data.card_id
    other = (await cards.create(STREAMING_CARD)).data.card_id
    codes = [await cards.content(card_id, "x" * n, n) for n in range(1, 12)]
    assert codes == [0] * 10 + [99991400]
    assert await cards.content(other, "y", 1) == 0  # the limit is per card
    tick(fs, 1.0)
    assert await cards.content(card_id, "x" * 11, 11) == 0  # the refused sequence is unused


async def test_streaming_closes_ten_minutes_after_it_opened(fs: FakeFeishu) -> None:
    cards = Cards(lark_client(fs))
    card_id = (await cards.create(STREAMING_CARD)).data.card_id
    assert await cards.content(card_id, "early", 1) == 0
    tick(fs, 600)
    assert await cards.content(card_id, "late", 2) == 200850
    assert not fs.cards[card_id].streaming_mode
    assert await cards.settings(card_id, {"streaming_mode": True}, 3) == 0  # reopen
    assert await cards.content(card_id, "again", 4) == 0
    tick(fs, 599)
    assert await cards.content(card_id, "still", 5) == 0


async def test_card_json_rules_on_create_and_update(fs: FakeFeishu) -> None:
    cards = Cards(lark_client(fs))
    assert (await cards.create({"config": {}, "elements": []})).code == 300303
    assert (await cards.create("{not json")).code == 200621
    no_multi = {**STREAMING_CARD, "config": {"update_multi": False}}
    assert (await cards.create(no_multi)).code == 300302
    twice = {
        "schema": "2.0",
        "body": {
            "elements": [
                {"tag": "markdown", "content": "a", "element_id": "x"},
                {"tag": "markdown", "content": "b", "element_id": "x"},
            ]
        },
    }
    assert (await cards.create(twice)).code == 300301
    many = {"schema": "2.0", "body": {"elements": [{"tag": "hr"}] * 201}}
    assert (await cards.create(many)).code == 300305
    big = {"schema": "2.0", "body": {"elements": [{"tag": "markdown", "content": "z" * 31_000}]}}
    assert (await cards.create(big)).code == 200860
    card_id = (await cards.create(STREAMING_CARD)).data.card_id
    final = {
        "schema": "2.0",
        "body": {"elements": [{"tag": "markdown", "content": "done", "element_id": "md"}]},
    }
    assert await cards.update(card_id, big, 1) == 200860
    assert await cards.update(card_id, final, 1) == 0
    assert fs.cards[card_id].text == "done" and not fs.cards[card_id].streaming_mode


async def test_element_operations(fs: FakeFeishu) -> None:
    cards = Cards(lark_client(fs))
    card_id = (await cards.create(STREAMING_CARD)).data.card_id
    footer = {"tag": "markdown", "content": "footer", "element_id": "foot"}
    assert await cards.add(card_id, [footer], 1, type="append") == 0
    head = {"tag": "markdown", "content": "head", "element_id": "head"}
    assert await cards.add(card_id, [head], 2, type="insert_before", target_element_id="md") == 0
    assert await cards.add(card_id, [head], 3, type="append") == 300301  # ids stay unique
    assert await cards.replace(card_id, "foot", {"tag": "markdown", "content": "tokens: 5"}, 3) == 0
    assert await cards.patch(card_id, "head", {"content": "title"}, 4) == 0
    ids = [e.get("element_id") for e in fs.cards[card_id].card["body"]["elements"]]
    assert ids == ["head", "md", "foot"]
    assert fs.cards[card_id].element_text("foot") == "tokens: 5"
    assert await cards.delete(card_id, "head", 5) == 0
    assert await cards.delete(card_id, "head", 6) == 300307
    assert [e["element_id"] for e in fs.cards[card_id].card["body"]["elements"]] == ["md", "foot"]
    assert await cards.content(card_id, "x", 7, element="foot") == 0
    button = {"tag": "button", "text": {"tag": "plain_text", "content": "Go"}, "element_id": "go"}
    assert await cards.add(card_id, [button], 8) == 0
    assert await cards.content(card_id, "x", 9, element="go") == 300310
    assert await cards.content("123", "x", 10) == 300300


async def test_card_entities_expire_after_fourteen_days(fs: FakeFeishu) -> None:
    cards = Cards(lark_client(fs))
    card_id = (await cards.create(STREAMING_CARD)).data.card_id
    tick(fs, 14 * 86400 + 1)
    forget_token(fs)  # the tenant token expired as well
    assert await cards.content(card_id, "x", 1) == 200750
