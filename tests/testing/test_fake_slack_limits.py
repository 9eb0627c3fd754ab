"""The fake Slack's rate tiers and scripted failures, seen by slack-sdk (and its retry handler)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from hotplex.testing.slack import FakeSlack
from hotplex.testing.slack.rate import RateLimiter


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        fake.add_channel("C1", members=["U1"])
        fake.add_channel("C2", members=["U1"])
        yield fake


def client_of(slack: FakeSlack, *, retries: int = 0) -> AsyncWebClient:
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_base_url)
    if retries:
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=retries))
    return client


async def test_a_forced_429_carries_retry_after(slack: FakeSlack) -> None:
    slack.fail_next("chat.update", retry_after=7)
    posted = await client_of(slack).chat_postMessage(channel="C1", text="a")
    with pytest.raises(SlackApiError) as raised:
        await client_of(slack).chat_update(channel="C1", ts=posted["ts"], text="b")
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "7"
    assert raised.value.response["error"] == "ratelimited"
    assert slack.calls_to("chat.update")[0].outcome == "ratelimited"
    await client_of(slack).chat_update(channel="C1", ts=posted["ts"], text="b")  # only once


async def test_the_sdk_retry_handler_waits_retry_after_then_succeeds(slack: FakeSlack) -> None:
    slack.fail_next("chat.postMessage", retry_after=1, times=2)
    started = time.monotonic()
    await client_of(slack, retries=3).chat_postMessage(channel="C1", text="eventually")
    calls = slack.calls_to("chat.postMessage")
    assert [c.status for c in calls] == [429, 429, 200]
    assert calls[1].at - calls[0].at >= 1.0
    assert calls[2].at - calls[1].at >= 1.0
    assert time.monotonic() - started >= 2.0
    assert [m.text for m in slack.messages("C1")] == ["eventually"]


async def test_other_scripted_errors(slack: FakeSlack) -> None:
    slack.fail_next("chat.postMessage", "channel_not_found")
    slack.fail_next("auth.test", "fatal_error", status=500)
    with pytest.raises(SlackApiError) as raised:
        await client_of(slack).chat_postMessage(channel="C1", text="a")
    assert (raised.value.response.status_code, raised.value.response["error"]) == (
        200,
        "channel_not_found",
    )
    with pytest.raises(SlackApiError) as server_error:
        await client_of(slack).auth_test()
    assert server_error.value.response.status_code == 500


async def test_strict_tiers_limit_per_method_and_post_message_per_channel(slack: FakeSlack) -> None:
    slack.rate_limits = "strict"
    client = client_of(slack)
    for index in range(3):  # a short burst is fine
        await client.chat_postMessage(channel="C1", text=f"{index}")
    await client.chat_postMessage(channel="C2", text="other channel")
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel="C1", text="4")
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "3"
    slack.rate_limits = "off"
    for index in range(30):
        await client.chat_postMessage(channel="C1", text=f"free {index}")


async def test_a_custom_budget_applies_in_any_mode(slack: FakeSlack) -> None:
    slack.rate_limits = "off"
    slack.set_rate_limit("users.info", 2, 60)
    client = client_of(slack)
    await client.users_info(user="U1")
    await client.users_info(user="U1")
    with pytest.raises(SlackApiError) as raised:
        await client.users_info(user="U1")
    assert int(raised.value.response.headers["Retry-After"]) in range(59, 61)


def test_the_window_slides_and_tiers_scale() -> None:
    now = [0.0]
    limiter = RateLimiter("strict", clock=lambda: now[0])
    assert [limiter.check("chat.startStream", None) for _ in range(20)] == [None] * 20
    assert limiter.check("chat.startStream", None) == 60.0
    now[0] = 30.0
    assert limiter.check("chat.startStream", None) == 30.0
    now[0] = 60.0
    assert limiter.check("chat.startStream", None) is None
    loose = RateLimiter("loose", clock=lambda: now[0])
    assert [loose.check("chat.startStream", None) for _ in range(200)] == [None] * 200
    assert loose.check("chat.startStream", None) is not None
    assert loose.check("not.aMethod", None) is None
