"""Webhook pushes from the fake, checked by lark-oapi's own ``EventDispatcherHandler``
(decryption, verification token and signature), plain and encrypted."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import lark_oapi as lark
import pytest
from aiohttp import web
from fake_feishu_kit import Recorder, WebhookReceiver, forget_token, lark_client
from lark_oapi.api.cardkit.v1 import CreateCardRequest, CreateCardRequestBody
from lark_oapi.api.im.v1 import CreateMessageRequest, CreateMessageRequestBody

from hotplex.testing.feishu import FakeFeishu, Limits, ManualClock

APPROVAL_CARD = {
    "schema": "2.0",
    "body": {"elements": [{"tag": "markdown", "content": "Run `ls`?", "element_id": "q"}]},
}
DECIDED_CARD = {
    "schema": "2.0",
    "body": {"elements": [{"tag": "markdown", "content": "Allowed by Alice", "element_id": "q"}]},
}


@pytest.fixture(params=["plain", "encrypted"])
async def fs(request: pytest.FixtureRequest) -> AsyncIterator[FakeFeishu]:
    key = "ek-secret" if request.param == "encrypted" else ""
    async with FakeFeishu(encrypt_key=key, verification_token="vt") as fake:
        fake.add_chat("oc_p2p", "p2p", members=["ou_alice"])
        fake.add_chat("oc_g", "group", members=["ou_alice", "ou_bob"])
        yield fake


async def test_a_message_event_reaches_the_sdk_handler_typed(fs: FakeFeishu) -> None:
    recorder = Recorder()
    async with WebhookReceiver(recorder.handler(fs.encrypt_key, "vt")) as receiver:
        fs.webhook_url = receiver.url
        message_id = await fs.user_message("oc_g", "ou_alice", "run the tests", mention_bot=True)
    delivery = fs.deliveries[-1]
    assert (delivery.via, delivery.status, delivery.answer) == ("webhook", 200, {"msg": "success"})
    [event] = recorder.messages
    assert event.header.event_type == "im.message.receive_v1"
    assert event.header.event_id == delivery.event_id
    assert event.header.token == "vt" and event.header.app_id == fs.app_id
    assert event.header.tenant_key == "T1"
    message = event.event.message
    assert (message.message_id, message.chat_id, message.chat_type) == (message_id, "oc_g", "group")
    assert json.loads(message.content) == {"text": "@_user_1 run the tests"}
    assert message.mentions[0].key == "@_user_1"
    assert message.mentions[0].id.open_id == fs.bot_open_id
    assert event.event.sender.sender_id.open_id == "ou_alice"
    assert event.event.sender.sender_type == "user"
    headers, body = receiver.requests[0]
    if fs.encrypt_key:
        assert list(json.loads(body)) == ["encrypt"]
        stamp, nonce = headers["X-Lark-Request-Timestamp"], headers["X-Lark-Request-Nonce"]
        expected = hashlib.sha256((stamp + nonce + fs.encrypt_key).encode() + body).hexdigest()
        assert headers["X-Lark-Signature"] == expected
    else:
        assert json.loads(body)["header"]["event_id"] == delivery.event_id
        assert "X-Lark-Signature" not in headers


async def test_a_p2p_message_and_a_thread_reply(fs: FakeFeishu) -> None:
    recorder = Recorder()
    async with WebhookReceiver(recorder.handler(fs.encrypt_key, "vt")) as receiver:
        fs.webhook_url = receiver.url
        root = await fs.user_message("oc_p2p", "ou_alice", "hello")
        await fs.user_message("oc_p2p", "ou_alice", "and more", parent_id=root)
    first, second = (m.event.message for m in recorder.messages)
    assert first.chat_type == "p2p" and not first.mentions and not first.root_id
    assert (second.root_id, second.parent_id) == (root, root)


async def test_forged_pushes_are_refused_by_the_sdk(fs: FakeFeishu) -> None:
    recorder = Recorder()
    async with WebhookReceiver(recorder.handler(fs.encrypt_key, "vt")) as receiver:
        fs.webhook_url = receiver.url
        wrong_token = fs.prepare_user_message("oc_g", "ou_alice", "x", token="not-vt")
        assert (await fs.deliver(wrong_token)).status == 500
        if fs.encrypt_key:
            good = fs.prepare_user_message("oc_g", "ou_alice", "y")
            assert (await fs.deliver(good, signature="0" * 64)).status == 500
            assert (await fs.deliver(good, encrypt_key="another-key")).status == 500
            # a stale timestamp still passes lark-oapi (it never checks freshness)
            assert (await fs.deliver(good, timestamp="1000")).status == 200
            assert len(recorder.messages) == 1
        else:
            assert recorder.messages == []


async def test_url_verification_answers_the_challenge(fs: FakeFeishu) -> None:
    recorder = Recorder()
    async with WebhookReceiver(recorder.handler(fs.encrypt_key, "vt")) as receiver:
        fs.webhook_url = receiver.url
        delivery = await fs.verify_url()
        refused = await fs.verify_url(token="wrong")
    assert delivery.status == 200 and delivery.answer is not None
    assert isinstance(delivery.answer["challenge"], str) and delivery.answer["challenge"]
    assert refused.status == 500


async def test_a_repush_keeps_the_event_id(fs: FakeFeishu) -> None:
    recorder = Recorder()
    async with WebhookReceiver(recorder.handler(fs.encrypt_key, "vt")) as receiver:
        fs.webhook_url = receiver.url
        await fs.user_message("oc_g", "ou_alice", "once")
        event_id = fs.deliveries[-1].event_id
        again = await fs.repush(event_id)
    assert again.event_id == event_id and again.status == 200
    # lark-oapi does not dedupe: the app must
    assert [m.header.event_id for m in recorder.messages] == [event_id, event_id]
    with pytest.raises(KeyError):
        await fs.repush("unknown")


async def test_a_card_click_is_answered_and_the_card_replaced(fs: FakeFeishu) -> None:
    client = lark_client(fs)
    body = (
        CreateMessageRequestBody.builder()
        .receive_id("oc_g")
        .msg_type("interactive")
        .content(json.dumps(APPROVAL_CARD))
        .build()
    )
    request = CreateMessageRequest.builder().receive_id_type("chat_id").request_body(body).build()
    message_id = (await client.im.v1.message.acreate(request)).data.message_id
    answer = {
        "toast": {"type": "success", "content": "Allowed"},
        "card": {"type": "raw", "data": DECIDED_CARD},
    }
    recorder = Recorder(answer)
    async with (
        WebhookReceiver(recorder.handler(fs.encrypt_key, "vt")) as events,
        WebhookReceiver(recorder.handler(fs.encrypt_key, "vt")) as cards,
    ):
        fs.webhook_url, fs.card_url = events.url, cards.url
        result = await fs.click_card(message_id, {"action": "allow", "req": "r1"}, "ou_alice")
    assert events.requests == [] and len(cards.requests) == 1
    assert result.status == 200 and result.toast == answer["toast"] and result.applied
    assert fs.message(message_id).text == "Allowed by Alice"
    [click] = recorder.clicks
    assert click.header.event_type == "card.action.trigger"
    assert len(click.header.create_time) == 16  # microseconds
    assert click.event.action.value == {"action": "allow", "req": "r1"}
    assert click.event.operator.open_id == "ou_alice"
    assert click.event.context.open_message_id == message_id
    assert click.event.context.open_chat_id == "oc_g"
    assert click.event.token.startswith("c-")


async def test_a_streaming_card_is_not_replaced_by_a_callback(fs: FakeFeishu) -> None:
    client = lark_client(fs)
    streaming = {**APPROVAL_CARD, "config": {"streaming_mode": True}}
    body = CreateCardRequestBody.builder().type("card_json").data(json.dumps(streaming)).build()
    card_id = (
        await client.cardkit.v1.card.acreate(CreateCardRequest.builder().request_body(body).build())
    ).data.card_id
    content = json.dumps({"type": "card", "data": {"card_id": card_id}})
    msg = (
        CreateMessageRequestBody.builder()
        .receive_id("oc_g")
        .msg_type("interactive")
        .content(content)
    )
    request = CreateMessageRequest.builder().receive_id_type("chat_id").request_body(msg.build())
    message_id = (await client.im.v1.message.acreate(request.build())).data.message_id
    recorder = Recorder({"card": {"type": "raw", "data": DECIDED_CARD}})
    async with WebhookReceiver(recorder.handler(fs.encrypt_key, "vt")) as receiver:
        fs.webhook_url = receiver.url
        result = await fs.click_card(message_id, {"a": 1}, "ou_bob")
    assert result.status == 200 and not result.applied
    assert fs.message(message_id).text == "Run `ls`?"


async def test_a_slow_receiver_leaves_the_push_unanswered() -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/", slow)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with FakeFeishu(limits=Limits(ack_seconds=0.3)) as fs:
            fs.add_chat("oc_g")
            fs.webhook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
            await fs.user_message("oc_g", "ou_alice", "hello?")
            assert fs.deliveries[-1].status is None
            release.set()
    finally:
        release.set()
        await runner.cleanup()


async def test_nowhere_to_push_is_an_error() -> None:
    async with FakeFeishu() as fs:
        fs.add_chat("oc_g")
        with pytest.raises(RuntimeError, match="webhook_url"):
            await fs.user_message("oc_g", "ou_alice", "lost")
        with pytest.raises(KeyError, match="add_chat"):
            await fs.user_message("oc_nope", "ou_alice", "lost")


async def delayed_update(client: Any, token: str, card: dict[str, Any]) -> int:
    request = (
        lark.BaseRequest.builder()
        .http_method(lark.HttpMethod.POST)
        .uri("/open-apis/interactive/v1/card/update")
        .token_types({lark.AccessTokenType.TENANT})
        .body({"token": token, "card": card})
        .build()
    )
    answer = await client.arequest(request)
    return int(json.loads(answer.raw.content)["code"])


async def test_a_callback_token_updates_the_card_twice_within_thirty_minutes() -> None:
    clock = ManualClock()
    async with FakeFeishu(clock=clock) as fs:
        fs.add_chat("oc_g", "group", members=["ou_alice"])
        client = lark_client(fs)
        body = (
            CreateMessageRequestBody.builder()
            .receive_id("oc_g")
            .msg_type("interactive")
            .content(json.dumps(APPROVAL_CARD))
            .build()
        )
        request = CreateMessageRequest.builder().receive_id_type("chat_id").request_body(body)
        message_id = (await client.im.v1.message.acreate(request.build())).data.message_id
        recorder = Recorder()  # answers {}: the card changes later
        async with WebhookReceiver(recorder.handler("", fs.verification_token)) as receiver:
            fs.webhook_url = receiver.url
            first = await fs.click_card(message_id, {"a": 1}, "ou_alice")
            second = await fs.click_card(message_id, {"a": 2}, "ou_alice")
        assert first.status == 200 and not first.applied
        token, later_token = (click.event.token for click in recorder.clicks)
        assert await delayed_update(client, token, DECIDED_CARD) == 0
        assert fs.message(message_id).text == "Allowed by Alice"
        assert await delayed_update(client, token, APPROVAL_CARD) == 0
        assert await delayed_update(client, token, DECIDED_CARD) == 200670  # two uses
        assert await delayed_update(client, "c-unknown", DECIDED_CARD) == 200670
        assert fs.message(message_id).text == "Run `ls`?"
        clock.advance(1801)
        forget_token(fs)
        assert await delayed_update(client, later_token, DECIDED_CARD) == 200670  # 30 minutes
        assert second.status == 200
