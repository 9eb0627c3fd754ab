"""The fake Slack delivering over HTTP, signed: checked by slack-sdk's own SignatureVerifier
and by a slack-bolt AsyncApp served with aiohttp (its request verification on)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from hotplex.testing.slack import FakeSlack, signature, signed_headers
from hotplex.testing.slack.delivery import http_body

# Slack's documented example (also in slack-sdk's tests): secret, timestamp, body, signature.
DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DOC_TIMESTAMP = "1531420618"
DOC_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGl"
    "gcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def test_the_signature_matches_slacks_documented_example() -> None:
    assert signature(DOC_SECRET, DOC_TIMESTAMP, DOC_BODY.encode()) == DOC_SIGNATURE


@given(st.text(max_size=2000), st.text(alphabet="0123456789abcdef", min_size=8, max_size=40))
def test_slack_sdks_verifier_accepts_the_fakes_signatures_and_rejects_tampering(
    text: str, secret: str
) -> None:
    body = text.encode()  # Slack's bodies are UTF-8 JSON or forms; the verifier decodes them
    headers = signed_headers(secret, body)
    verifier = SignatureVerifier(secret)
    lowered = {key.lower(): value for key, value in headers.items()}
    assert verifier.is_valid_request(body, lowered)
    assert not verifier.is_valid_request(body + b"x", lowered)
    assert not SignatureVerifier(secret + "x").is_valid_request(body, lowered)
    stale = signed_headers(secret, body, timestamp=time.time() - 301)
    assert not verifier.is_valid_request(body, {k.lower(): v for k, v in stale.items()})


class BoltServer:
    """A slack-bolt AsyncApp served on 127.0.0.1 at /slack/events."""

    def __init__(self, slack: FakeSlack, *, delay: float = 0.0) -> None:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_base_url)
        self.app = AsyncApp(client=client, signing_secret=slack.signing_secret)
        self.events: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.delay = delay
        self.runner: web.AppRunner | None = None

        @self.app.middleware
        async def record_headers(req: Any, resp: Any, next: Any) -> Any:
            self.headers.append({k: v[0] for k, v in req.headers.items()})
            slack.notify()
            return await next()

        @self.app.event("message")
        async def on_message(event: dict[str, Any]) -> None:
            self.events.append(event)
            slack.notify()

    async def start(self) -> str:
        web_app = self.app.web_app(path="/slack/events")
        if self.delay:

            @web.middleware
            async def slow(request: web.Request, handler: Any) -> web.StreamResponse:
                await request.read()  # aiohttp keeps it for Bolt's handler
                await asyncio.sleep(self.delay)
                return await handler(request)

            web_app.middlewares.append(slow)
        self.runner = web.AppRunner(web_app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/slack/events"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(ack_timeout=0.5) as fake:
        fake.retry_delays = (0.0, 0.0, 0.0)
        fake.add_dm("U1")
        yield fake


@pytest.fixture
async def bolt(slack: FakeSlack) -> AsyncIterator[BoltServer]:
    server = BoltServer(slack)
    slack.http_target = await server.start()
    yield server
    await server.stop()


async def test_a_signed_event_is_accepted_by_bolt(slack: FakeSlack, bolt: BoltServer) -> None:
    await slack.user_message("DU1", "U1", "über http")
    delivery = slack.deliveries[-1]
    assert delivery.acked
    assert [(a.transport, a.http_status) for a in delivery.attempts] == [("http", 200)]
    await slack.wait_for(lambda: bolt.events)
    assert bolt.events[0]["text"] == "über http"
    assert "x-slack-retry-num" not in bolt.headers[0]


async def test_a_bad_or_stale_signature_gets_401_and_no_handler_runs(
    slack: FakeSlack, bolt: BoltServer
) -> None:
    body = slack.event_envelope({"type": "message", "channel": "DU1", "user": "U1", "text": "x"})
    assert (await slack.post_signed(body, signing_secret="wrong"))[0] == 401
    stale = await slack.post_signed(body, timestamp=time.time() - 301)
    assert stale[0] == 401
    tampered = await slack.post_signed(body, headers={"X-Slack-Signature": "v0=" + "0" * 64})
    assert tampered[0] == 401
    assert (await slack.post_signed(body))[0] == 200
    await slack.wait_for(lambda: bolt.events)
    assert len(bolt.events) == 1


async def test_url_verification_is_answered_with_the_challenge(
    slack: FakeSlack, bolt: BoltServer
) -> None:
    status, answer = await slack.url_verification("abc123")
    assert (status, answer) == (200, {"challenge": "abc123"})


async def test_a_slow_app_gets_retries_with_slacks_retry_headers(slack: FakeSlack) -> None:
    server = BoltServer(slack, delay=0.8)
    slack.http_target = await server.start()
    try:
        await slack.user_message("DU1", "U1", "slow")
        delivery = slack.deliveries[-1]
        await slack.wait_for(lambda: delivery.gave_up, timeout=10)
        assert [a.retry_reason for a in delivery.attempts] == [
            "",
            "http_timeout",
            "http_timeout",
            "http_timeout",
        ]
        await slack.wait_for(lambda: len(server.headers) == 4, timeout=5)
        retries = sorted(h.get("x-slack-retry-num", "0") for h in server.headers)
        assert retries == ["0", "1", "2", "3"]
        assert {h.get("x-slack-retry-reason") for h in server.headers} == {None, "http_timeout"}
        assert len({e["client_msg_id"] for e in server.events}) == 1
    finally:
        await server.stop()


async def test_interactivity_and_commands_are_form_encoded_like_slack(slack: FakeSlack) -> None:
    payload = {"type": "block_actions", "actions": [{"action_id": "a"}]}
    raw, kind = http_body("interactive", payload)
    assert kind == "application/x-www-form-urlencoded"
    assert raw.startswith(b"payload=")
    form, _ = http_body("slash_commands", {"command": "/hotplex", "text": "a b"})
    assert form == b"command=%2Fhotplex&text=a+b"
    event, kind = http_body("events_api", {"type": "event_callback"})
    assert (json.loads(event), kind) == ({"type": "event_callback"}, "application/json")


async def test_x_slack_no_retry_stops_the_retries(slack: FakeSlack) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=500, headers={"X-Slack-No-Retry": "1"})

    async def fail(request: web.Request) -> web.Response:
        return web.Response(status=503)

    app = web.Application()
    app.add_routes([web.post("/refuse", refuse), web.post("/fail", fail)])
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        slack.http_target = f"{base}/refuse"
        refused = await slack.send_event({"type": "message", "channel": "DU1", "text": "a"})
        assert refused.gave_up
        assert [a.http_status for a in refused.attempts] == [500]
        slack.http_target = f"{base}/fail"
        failed = await slack.send_event({"type": "message", "channel": "DU1", "text": "b"})
        await slack.wait_for(lambda: failed.gave_up)
        assert [(a.http_status, a.retry_reason) for a in failed.attempts] == [
            (503, ""),
            (503, "http_error"),
            (503, "http_error"),
            (503, "http_error"),
        ]
    finally:
        await runner.cleanup()


async def test_waiting_events_go_out_once_an_http_target_is_set(slack: FakeSlack) -> None:
    await slack.user_message("DU1", "U1", "before the app was there")
    assert slack.deliveries[0].attempts == []
    server = BoltServer(slack)
    slack.http_target = await server.start()
    try:
        await slack.wait_for(lambda: server.events)
        assert server.events[0]["text"] == "before the app was there"
    finally:
        await server.stop()


def test_signature_is_hmac_sha256_over_v0_timestamp_body() -> None:
    expected = hmac.new(b"s", b"v0:1:body", hashlib.sha256).hexdigest()
    assert signature("s", "1", b"body") == f"v0={expected}"


CARD = [
    {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": "deny",
                "value": "req-9",
                "text": {"type": "plain_text", "text": "Deny"},
            }
        ],
    }
]
MODAL = {
    "type": "modal",
    "callback_id": "reason",
    "title": {"type": "plain_text", "text": "Why?"},
    "submit": {"type": "plain_text", "text": "Deny"},
    "blocks": [
        {
            "type": "input",
            "block_id": "b",
            "label": {"type": "plain_text", "text": "Reason"},
            "element": {"type": "plain_text_input", "action_id": "a"},
        }
    ],
}


async def test_commands_clicks_and_modals_work_through_bolt_over_http(
    slack: FakeSlack, bolt: BoltServer
) -> None:
    app = bolt.app

    @app.command("/hotplex")
    async def command(ack: Any, command: dict[str, Any]) -> None:
        await ack(text=f"doing {command['text']}")

    @app.action("deny")
    async def deny(ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: Any) -> None:
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=MODAL)
        await respond(replace_original=True, text="waiting for a reason")

    @app.view("reason")
    async def reason(ack: Any, view: dict[str, Any]) -> None:
        text = view["state"]["values"]["b"]["a"]["value"]
        if len(text) < 3:
            await ack(response_action="errors", errors={"b": "too short"})
        else:
            await ack()

    delivery = await slack.slash_command("/hotplex", "status", "U1", "DU1")
    assert delivery.response == {"text": "doing status"}
    assert [(e.text, e.source) for e in slack.ephemerals] == [("doing status", "ack")]

    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_base_url)
    card = await client.chat_postMessage(channel="DU1", text="approve?", blocks=CARD)
    await slack.click_button(card["ts"], "deny", "U1")
    await slack.wait_for(lambda: slack.views and slack.message(card["ts"]).edits)
    assert slack.message(card["ts"]).text == "waiting for a reason"

    refused = await slack.submit_view(values={"b": {"a": "no"}})
    assert refused.response == {"response_action": "errors", "errors": {"b": "too short"}}
    assert not slack.views[0].closed
    accepted = await slack.submit_view(values={"b": {"a": "too risky"}})
    assert accepted.acked and slack.views[0].closed


async def test_a_mention_over_http_is_two_signed_requests(
    slack: FakeSlack, bolt: BoltServer
) -> None:
    slack.add_channel("C1", members=["U1"])
    mentions: list[dict[str, Any]] = []

    @bolt.app.event("app_mention")
    async def on_mention(event: dict[str, Any]) -> None:
        mentions.append(event)
        slack.notify()

    ts = await slack.user_message("C1", "U1", "hello", mention=True)
    await slack.wait_for(lambda: bolt.events and mentions)
    assert bolt.events[0]["ts"] == mentions[0]["ts"] == ts
    first, second = slack.deliveries[-2:]
    assert first.event_id != second.event_id
    assert all(d.acked and d.attempts[0].transport == "http" for d in (first, second))
