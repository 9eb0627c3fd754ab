"""The fake Slack's Socket Mode, driven by slack-sdk's aiohttp SocketModeClient and by
slack-bolt's AsyncApp with AsyncSocketModeHandler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from hotplex.testing.slack import FakeSlack


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(ack_timeout=0.5) as fake:
        fake.retry_delays = (0.0, 0.0, 0.0)
        fake.add_channel("C1", members=["U1"])
        fake.add_dm("U1")
        yield fake


def web_client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_base_url)


@pytest.fixture
async def received(slack: FakeSlack) -> AsyncIterator[list[SocketModeRequest]]:
    """Requests a raw SocketModeClient got; it acks all but those with ``noack`` in the text."""
    requests: list[SocketModeRequest] = []
    client = SocketModeClient(
        app_token=slack.app_token, web_client=web_client(slack), ping_interval=0.5
    )

    async def listener(client: SocketModeClient, request: SocketModeRequest) -> None:
        requests.append(request)
        slack.notify()
        text = request.payload.get("event", {}).get("text", "")
        if "noack" not in text:
            await client.send_socket_mode_response(
                SocketModeResponse(envelope_id=request.envelope_id)
            )

    client.socket_mode_request_listeners.append(listener)
    await client.connect()
    await slack.wait_connected()
    yield requests
    await client.close()


async def test_hello_then_an_event_then_its_ack(
    slack: FakeSlack, received: list[SocketModeRequest]
) -> None:
    connection = slack.connections[0]
    assert slack.calls_to("apps.connections.open")[0].token == slack.app_token
    ts = await slack.user_message("DU1", "U1", "hi there")
    delivery = slack.deliveries[-1]
    await slack.wait_for(lambda: delivery.acked)
    request = received[0]
    assert (request.type, request.retry_attempt, request.accepts_response_payload) == (
        "events_api",
        0,
        False,
    )
    event = request.payload["event"]
    assert (event["type"], event["channel_type"], event["text"], event["ts"]) == (
        "message",
        "im",
        "hi there",
        ts,
    )
    assert request.payload["event_id"] == delivery.event_id
    assert [a.envelope_id for a in slack.acks] == [request.envelope_id]
    assert connection.received == [{"envelope_id": request.envelope_id}]


async def test_a_mention_arrives_as_message_and_app_mention(
    slack: FakeSlack, received: list[SocketModeRequest]
) -> None:
    ts = await slack.user_message("C1", "U1", "help me", mention=True)
    await slack.wait_for(lambda: len(received) == 2)
    events = [r.payload["event"] for r in received]
    assert [e["type"] for e in events] == ["message", "app_mention"]
    assert {e["ts"] for e in events} == {ts}
    assert all(e["text"] == "<@UBOT> help me" for e in events)
    assert len({r.payload["event_id"] for r in received}) == 2
    assert len({e["client_msg_id"] for e in events}) == 1  # one message, two events
    await slack.user_message("DU1", "U1", f"<@{slack.bot_user_id}> in a DM")
    await slack.wait_for(lambda: len(received) == 3)
    assert received[2].payload["event"]["type"] == "message"  # no app_mention in a DM


async def test_an_unacked_envelope_is_redelivered_with_the_same_event_id(
    slack: FakeSlack, received: list[SocketModeRequest]
) -> None:
    await slack.user_message("DU1", "U1", "noack please")
    delivery = slack.deliveries[-1]
    await slack.wait_for(lambda: delivery.gave_up, timeout=10)
    assert [r.retry_attempt for r in received] == [0, 1, 2, 3]
    assert [r.retry_reason for r in received] == ["", "timeout", "timeout", "timeout"]
    assert len({r.envelope_id for r in received}) == 4
    assert {r.payload["event_id"] for r in received} == {delivery.event_id}


async def test_disconnect_makes_the_sdk_reconnect_and_delivery_continues(
    slack: FakeSlack, received: list[SocketModeRequest]
) -> None:
    first = slack.connections[0]
    await slack.disconnect_socket("refresh_requested", close_after=5.0)
    await slack.wait_for(lambda: any(c is not first and not c.closing for c in slack.connections))
    assert len(slack.calls_to("apps.connections.open")) == 2
    await slack.user_message("DU1", "U1", "after the refresh")
    await slack.wait_for(lambda: slack.deliveries[-1].acked)
    assert received[-1].payload["event"]["text"] == "after the refresh"


async def test_a_silenced_socket_is_replaced_and_the_lost_envelope_redelivered(
    slack: FakeSlack, received: list[SocketModeRequest]
) -> None:
    first = slack.connections[0]
    slack.silence_socket()
    await slack.user_message("DU1", "U1", "sent into the void")
    delivery = slack.deliveries[-1]
    await slack.wait_for(lambda: delivery.acked, timeout=15)
    assert first not in slack.connections or first.silenced
    assert [a.transport for a in delivery.attempts][-1] == "socket"
    assert delivery.attempts[-1].retry_attempt >= 1
    assert [r.payload["event"]["text"] for r in received] == ["sent into the void"]


async def test_events_wait_for_a_socket_when_none_is_connected(slack: FakeSlack) -> None:
    await slack.user_message("DU1", "U1", "early")
    assert slack.deliveries[0].attempts == []
    got: list[dict[str, Any]] = []
    app = AsyncApp(client=web_client(slack))

    @app.event("message")
    async def on_message(event: dict[str, Any]) -> None:
        got.append(event)
        slack.notify()

    handler = AsyncSocketModeHandler(app, app_token=slack.app_token)
    await handler.connect_async()
    try:
        await slack.wait_for(lambda: got)
        assert got[0]["text"] == "early"
        assert slack.deliveries[0].acked
    finally:
        await handler.close_async()


async def test_bolt_acks_a_slash_command_with_its_text_and_answers_a_click(
    slack: FakeSlack,
) -> None:
    app = AsyncApp(client=web_client(slack))

    @app.command("/hotplex")
    async def command(ack: Any, command: dict[str, Any]) -> None:
        await ack(text=f"running {command['text']}")

    @app.action("approve")
    async def approve(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        await respond(replace_original=True, text=f"approved by <@{body['user']['id']}>")

    handler = AsyncSocketModeHandler(app, app_token=slack.app_token)
    await handler.connect_async()
    try:
        delivery = await slack.slash_command("/hotplex", "status", "U1", "C1")
        await slack.wait_for(lambda: delivery.acked)
        assert delivery.response == {"text": "running status"}
        assert [(e.user, e.text, e.source) for e in slack.ephemerals] == [
            ("U1", "running status", "ack")
        ]
        card = await web_client(slack).chat_postMessage(
            channel="C1",
            text="approve?",
            blocks=[
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": "approve",
                            "value": "req-1",
                            "text": {"type": "plain_text", "text": "Allow"},
                        }
                    ],
                }
            ],
        )
        await slack.click_button(card["ts"], "approve", "U1")
        await slack.wait_for(lambda: slack.message(card["ts"]).text == "approved by <@U1>")
        assert slack.message(card["ts"]).edits[0].text == "approve?"
    finally:
        await handler.close_async()


async def test_pings_are_answered(slack: FakeSlack, received: list[SocketModeRequest]) -> None:
    connection = slack.connections[0]
    await slack.wait_for(lambda: connection.pings >= 2, timeout=5)
    assert len(slack.calls_to("apps.connections.open")) == 1


async def test_redeliver_sends_an_acked_event_again_as_a_retry(
    slack: FakeSlack, received: list[SocketModeRequest]
) -> None:
    await slack.user_message("DU1", "U1", "once")
    delivery = slack.deliveries[-1]
    await slack.wait_for(lambda: delivery.acked)
    await slack.redeliver(delivery)
    await slack.wait_for(lambda: len(received) == 2)
    assert [(r.retry_attempt, r.retry_reason) for r in received] == [(0, ""), (1, "timeout")]
    assert received[0].payload == received[1].payload


async def test_the_bots_own_posts_are_echoed_only_when_asked(
    slack: FakeSlack, received: list[SocketModeRequest]
) -> None:
    client = web_client(slack)
    await client.chat_postMessage(channel="C1", text="quiet")
    slack.echo_bot_messages = True
    posted = await client.chat_postMessage(channel="C1", text="echoed")
    await slack.wait_for(lambda: received)
    event = received[0].payload["event"]
    assert (event["text"], event["bot_id"], event["user"], event["ts"]) == (
        "echoed",
        slack.bot_id,
        slack.bot_user_id,
        posted["ts"],
    )
    assert len(received) == 1


async def test_no_events_from_a_channel_without_the_bot(
    slack: FakeSlack, received: list[SocketModeRequest]
) -> None:
    slack.add_channel("C9", members=["U1"], bot_member=False)
    await slack.user_message("C9", "U1", "not for the bot", mention=True)
    await slack.user_message("DU1", "U1", "marker")
    await slack.wait_for(lambda: received)
    assert [r.payload["event"]["text"] for r in received] == ["marker"]


async def test_one_connection_too_many_is_told_too_many_websockets(
    slack: FakeSlack, received: list[SocketModeRequest]
) -> None:
    slack.max_connections = 1
    url = (await web_client(slack).apps_connections_open(app_token=slack.app_token))["url"]
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        message = await ws.receive_json(timeout=5)
        assert (message["type"], message["reason"]) == ("disconnect", "too_many_websockets")
    assert len(slack.connections) == 1


async def test_a_connection_url_works_once(slack: FakeSlack) -> None:
    url = (await web_client(slack).apps_connections_open(app_token=slack.app_token))["url"]
    assert url.startswith(slack.base_url.replace("http://", "ws://"))
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as ws:
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(url)


async def test_assistant_thread_started(
    slack: FakeSlack, received: list[SocketModeRequest]
) -> None:
    thread_ts = await slack.assistant_thread_started("U1")
    await slack.wait_for(lambda: received)
    event = received[0].payload["event"]
    assert event["type"] == "assistant_thread_started"
    assert event["assistant_thread"]["channel_id"] == "DU1"
    assert event["assistant_thread"]["thread_ts"] == thread_ts
    await slack.user_message("DU1", "U1", "in the assistant thread", thread_ts=thread_ts)
    await slack.wait_for(lambda: len(received) == 2)
    assert received[1].payload["event"]["thread_ts"] == thread_ts


async def test_an_outage_refuses_everything_then_the_sdk_comes_back(
    slack: FakeSlack, received: list[SocketModeRequest]
) -> None:
    await slack.set_outage(True)
    await slack.wait_for(lambda: not slack.connections)
    with pytest.raises(SlackApiError) as raised:
        await web_client(slack).chat_postMessage(channel="C1", text="down")
    assert (raised.value.response.status_code, raised.value.response["error"]) == (
        503,
        "service_unavailable",
    )
    await slack.user_message("DU1", "U1", "sent during the outage")
    await slack.wait_for(
        lambda: any(c.status == 503 for c in slack.calls_to("apps.connections.open")), timeout=10
    )
    assert slack.deliveries[-1].attempts == []
    await slack.set_outage(False)
    await slack.wait_for(lambda: slack.deliveries[-1].acked, timeout=15)
    assert [r.payload["event"]["text"] for r in received] == ["sent during the outage"]


async def test_edits_deletions_joins_and_other_bots_arrive_with_their_subtypes(
    slack: FakeSlack, received: list[SocketModeRequest]
) -> None:
    ts = await slack.user_message("C1", "U1", "first words")
    await slack.user_edit("C1", ts, "second words")
    await slack.user_delete("C1", ts)
    await slack.user_joins("C1", "U5")
    other = await slack.bot_message("C1", "beep", bot_id="B0OTHER")
    await slack.wait_for(lambda: len(received) == 6)
    events = [r.payload["event"] for r in received]
    assert [(e["type"], e.get("subtype")) for e in events] == [
        ("message", None),
        ("message", "message_changed"),
        ("message", "message_deleted"),
        ("member_joined_channel", None),
        ("message", "channel_join"),
        ("message", None),
    ]
    changed, deleted = events[1], events[2]
    assert (changed["message"]["text"], changed["previous_message"]["text"]) == (
        "second words",
        "first words",
    )
    assert changed["message"]["client_msg_id"] == events[0]["client_msg_id"]
    assert deleted["deleted_ts"] == ts
    assert slack.messages("C1", include_deleted=False)[0].ts != ts
    assert (events[5]["bot_id"], events[5]["ts"], "user" in events[5]) == ("B0OTHER", other, False)
    assert [e.text for e in slack.message(other).edits] == []
