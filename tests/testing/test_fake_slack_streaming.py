"""The fake Slack's chat.*Stream state machine, driven by slack-sdk's AsyncWebClient and its
``chat_stream`` helper; the stream lifetime runs on an injected clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from hotplex.testing.slack import FakeSlack


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def slack(clock: Clock) -> AsyncIterator[FakeSlack]:
    async with FakeSlack(clock=clock) as fake:
        fake.add_channel("C1", members=["U1"])
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_base_url)


async def error_of(call: object) -> str:
    with pytest.raises(SlackApiError) as raised:
        await call  # type: ignore[misc]
    return str(raised.value.response["error"])


RECIPIENT = {"recipient_team_id": "T0HOTPLEX", "recipient_user_id": "U1"}


async def test_the_sdk_stream_helper_builds_one_message(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    parent = await slack.user_message("C1", "U1", "question", mention=True)
    stream = await client.chat_stream(channel="C1", thread_ts=parent, buffer_size=10, **RECIPIENT)
    await stream.append(markdown_text="Hello ")  # buffered: fewer than 10 characters
    await stream.append(markdown_text="streaming")  # startStream
    await stream.append(markdown_text=" world, again")  # appendStream
    assert stream.ts is not None
    message = slack.message(stream.ts)
    assert (message.streaming, message.text, message.thread_ts) == (
        "in_progress",
        "Hello streaming world, again",
        parent,
    )
    await stream.stop(markdown_text="!", blocks=[{"type": "divider"}])
    assert (message.streaming, message.text, message.blocks) == (
        "completed",
        "Hello streaming world, again!",
        [{"type": "divider"}],
    )
    assert [c.method for c in slack.calls if c.method.startswith("chat.")] == [
        "chat.startStream",
        "chat.appendStream",
        "chat.stopStream",
    ]


async def test_markdown_text_and_task_chunks_are_accepted(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    parent = await slack.user_message("C1", "U1", "q")
    started = await client.chat_startStream(
        channel="C1", thread_ts=parent, markdown_text="a", **RECIPIENT
    )
    ts = started["ts"]
    task = {"type": "task_update", "id": "t1", "title": "Bash", "status": "in_progress"}
    await client.chat_appendStream(
        channel="C1", ts=ts, chunks=[task, {"type": "markdown_text", "text": "b"}]
    )
    await client.chat_appendStream(channel="C1", ts=ts, markdown_text="c")
    assert slack.message(ts).text == "abc"
    assert slack.message(ts).chunks == [task, {"type": "markdown_text", "text": "b"}]
    bad = client.chat_appendStream(channel="C1", ts=ts, chunks=[{"type": "nope"}])
    assert await error_of(bad) == "invalid_chunks"
    too_long = client.chat_appendStream(channel="C1", ts=ts, markdown_text="x" * 12_001)
    assert await error_of(too_long) == "msg_too_long"
    await client.chat_appendStream(channel="C1", ts=ts, markdown_text="x" * 12_000)


async def test_start_needs_a_thread_the_recipient_and_content(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    parent = await slack.user_message("C1", "U1", "q")
    no_thread = client.api_call(
        "chat.startStream", json={"channel": "C1", "markdown_text": "a", **RECIPIENT}
    )
    assert await error_of(no_thread) == "invalid_arguments"
    no_team = client.chat_startStream(
        channel="C1", thread_ts=parent, markdown_text="a", recipient_user_id="U1"
    )
    assert await error_of(no_team) == "missing_recipient_team_id"
    no_user = client.chat_startStream(
        channel="C1", thread_ts=parent, markdown_text="a", recipient_team_id="T0HOTPLEX"
    )
    assert await error_of(no_user) == "missing_recipient_user_id"
    empty = client.chat_startStream(channel="C1", thread_ts=parent, **RECIPIENT)
    assert await error_of(empty) == "invalid_arguments"


async def test_after_stop_appends_are_refused_and_update_is_allowed(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    parent = await slack.user_message("C1", "U1", "q")
    ts = (
        await client.chat_startStream(
            channel="C1", thread_ts=parent, markdown_text="a", **RECIPIENT
        )
    )["ts"]
    assert await error_of(client.chat_update(channel="C1", ts=ts, text="x")) == (
        "streaming_state_conflict"
    )
    await client.chat_stopStream(channel="C1", ts=ts)
    again = client.chat_appendStream(channel="C1", ts=ts, markdown_text="b")
    assert await error_of(again) == "message_not_in_streaming_state"
    assert await error_of(client.chat_stopStream(channel="C1", ts=ts)) == (
        "message_not_in_streaming_state"
    )
    await client.chat_update(channel="C1", ts=ts, text="final")
    assert slack.message(ts).text == "final"


async def test_the_stream_dies_after_its_lifetime_on_the_injected_clock(
    slack: FakeSlack, client: AsyncWebClient, clock: Clock
) -> None:
    parent = await slack.user_message("C1", "U1", "q")
    ts = (
        await client.chat_startStream(
            channel="C1", thread_ts=parent, markdown_text="a", **RECIPIENT
        )
    )["ts"]
    clock.now += 299.0
    await client.chat_appendStream(channel="C1", ts=ts, markdown_text="b")
    clock.now += 1.0
    late = client.chat_appendStream(channel="C1", ts=ts, markdown_text="c")
    assert await error_of(late) == "message_not_in_streaming_state"
    assert await error_of(client.chat_stopStream(channel="C1", ts=ts)) == (
        "message_not_in_streaming_state"
    )
    await client.chat_update(channel="C1", ts=ts, markdown_text="ab and the rest")
    assert slack.message(ts).text == "ab and the rest"
    slack.stream_lifetime = 5.0
    second = (
        await client.chat_startStream(
            channel="C1", thread_ts=parent, markdown_text="x", **RECIPIENT
        )
    )["ts"]
    clock.now += 5.0
    assert await error_of(client.chat_appendStream(channel="C1", ts=second, markdown_text="y")) == (
        "message_not_in_streaming_state"
    )


async def test_a_user_stop_and_a_workspace_without_streaming(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    parent = await slack.user_message("C1", "U1", "q")
    ts = (
        await client.chat_startStream(
            channel="C1", thread_ts=parent, markdown_text="a", **RECIPIENT
        )
    )["ts"]
    slack.stop_stream_by_user(ts)
    assert await error_of(client.chat_appendStream(channel="C1", ts=ts, markdown_text="b")) == (
        "stopped_by_user"
    )
    slack.streaming_enabled = False
    start = client.chat_startStream(channel="C1", thread_ts=parent, markdown_text="a", **RECIPIENT)
    assert await error_of(start) == "unknown_method"


async def test_a_stream_past_40000_characters_is_truncated_with_a_warning(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    parent = await slack.user_message("C1", "U1", "q")
    start = client.chat_startStream(
        channel="C1", thread_ts=parent, markdown_text="a" * 12_000, **RECIPIENT
    )
    ts = (await start)["ts"]
    for _ in range(2):
        answer = await client.chat_appendStream(channel="C1", ts=ts, markdown_text="b" * 12_000)
        assert "warning" not in answer.data
    answer = await client.chat_appendStream(channel="C1", ts=ts, markdown_text="c" * 5_000)
    assert answer["warning"] == "message_truncated"
    assert slack.message(ts).text == "a" * 12_000 + "b" * 24_000 + "c" * 4_000


async def test_first_text_at_marks_when_a_message_first_showed_text(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    empty = await client.api_call(
        "chat.postMessage", json={"channel": "C1", "blocks": [{"type": "divider"}]}
    )
    placeholder = slack.message(empty["ts"])
    assert placeholder.first_text_at is None
    await client.chat_update(channel="C1", ts=empty["ts"], text="now text")
    assert placeholder.first_text_at is not None
    assert placeholder.first_text_at >= placeholder.posted_at
    shown = placeholder.first_text_at
    await client.chat_update(channel="C1", ts=empty["ts"], text="more text")
    assert placeholder.first_text_at == shown
    posted = await client.chat_postMessage(channel="C1", text="at once")
    assert slack.message(posted["ts"]).first_text_at == slack.message(posted["ts"]).posted_at


async def test_bolts_say_stream_streams_into_the_mentions_thread(slack: FakeSlack) -> None:
    app = AsyncApp(client=AsyncWebClient(token=slack.bot_token, base_url=slack.api_base_url))

    @app.event("app_mention")
    async def on_mention(say_stream: Any) -> None:
        stream = await say_stream(buffer_size=5)
        await stream.append(markdown_text="streamed ")
        await stream.stop(markdown_text="answer")

    handler = AsyncSocketModeHandler(app, app_token=slack.app_token)
    await handler.connect_async()
    try:
        ts = await slack.user_message("C1", "U1", "go", mention=True)
        reply = await slack.wait_for(
            lambda: [m for m in slack.messages("C1", ts) if m.streaming == "completed"]
        )
        assert reply[0].text == "streamed answer"
        assert reply[0].thread_ts == ts
        start = slack.calls_to("chat.startStream")[0].args
        assert (start["recipient_user_id"], start["recipient_team_id"]) == ("U1", "T0HOTPLEX")
    finally:
        await handler.close_async()
