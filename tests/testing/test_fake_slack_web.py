"""The fake Slack's Web API, driven by slack-sdk's real AsyncWebClient."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from hotplex.testing.slack import FakeSlack


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        fake.add_channel("C1", name="general", members=["U1"])
        fake.add_dm("U1")
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_base_url)


async def error_of(call: object) -> str:
    with pytest.raises(SlackApiError) as raised:
        await call  # type: ignore[misc]
    return str(raised.value.response["error"])


async def test_auth_test_names_the_bot_and_lists_the_granted_scopes(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    response = await client.auth_test()
    assert (response["team_id"], response["user_id"], response["bot_id"]) == (
        "T0HOTPLEX",
        "UBOT",
        "B0HOTPLEX",
    )
    assert "chat:write" in response.headers["X-OAuth-Scopes"].split(",")
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=slack.api_base_url)
    assert await error_of(wrong.auth_test()) == "invalid_auth"
    app_token = AsyncWebClient(token=slack.app_token, base_url=slack.api_base_url)
    assert await error_of(app_token.auth_test()) == "not_allowed_token_type"
    assert [c.outcome for c in slack.calls_to("auth.test")] == [
        "ok",
        "invalid_auth",
        "not_allowed_token_type",
    ]


async def test_a_call_without_a_token_is_not_authed(slack: FakeSlack) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{slack.api_base_url}chat.postMessage", json={}) as response:
            assert response.status == 200
            assert await response.json() == {"ok": False, "error": "not_authed"}
        async with session.post(f"{slack.api_base_url}no.suchMethod") as response:
            assert (await response.json())["error"] == "unknown_method"


async def test_a_missing_scope_is_refused_with_the_scope_needed(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    slack.scopes = [s for s in slack.scopes if s != "chat:write"]
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel="C1", text="hi")
    assert raised.value.response["error"] == "missing_scope"
    assert raised.value.response["needed"] == "chat:write"
    assert "chat:write" not in raised.value.response.headers["X-OAuth-Scopes"]


async def test_post_update_delete_keep_the_history(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel="C1", text="first")
    ts = posted["ts"]
    reply = await client.chat_postMessage(channel="C1", text="in thread", thread_ts=ts)
    nested = await client.chat_postMessage(channel="C1", text="nested", thread_ts=reply["ts"])
    assert slack.message(nested["ts"]).thread_ts == ts  # a reply's ts names its thread
    await client.chat_update(channel="C1", ts=ts, text="second", blocks=[{"type": "divider"}])
    message = slack.message(ts)
    assert (message.text, message.blocks, [e.text for e in message.edits]) == (
        "second",
        [{"type": "divider"}],
        ["first"],
    )
    assert [m.text for m in slack.messages("C1", ts)] == ["second", "in thread", "nested"]
    await client.chat_delete(channel="C1", ts=reply["ts"])  # query-string arguments
    assert [m.text for m in slack.messages("C1", ts)] == ["second", "nested"]
    assert await error_of(client.chat_delete(channel="C1", ts=reply["ts"])) == "message_not_found"


async def test_posting_errors_follow_slack(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.add_channel("C2", bot_member=False)
    assert await error_of(client.chat_postMessage(channel="CNOPE", text="x")) == "channel_not_found"
    assert await error_of(client.chat_postMessage(channel="C2", text="x")) == "not_in_channel"
    assert await error_of(client.api_call("chat.postMessage", json={"channel": "C1"})) == "no_text"
    too_long = client.chat_postMessage(channel="C1", text="x" * 40_001)
    assert await error_of(too_long) == "msg_too_long"
    await client.chat_postMessage(channel="C1", text="x" * 40_000)
    conflict = client.chat_postMessage(channel="C1", text="a", markdown_text="b")
    assert await error_of(conflict) == "markdown_text_conflict"
    bad_thread = client.chat_postMessage(channel="C1", text="a", thread_ts="1.2")
    assert await error_of(bad_thread) == "invalid_thread_ts"
    user_message = await slack.user_message("C1", "U1", "theirs")
    assert await error_of(client.chat_update(channel="C1", ts=user_message, text="mine")) == (
        "cant_update_message"
    )


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        ([{"type": "divider"}] * 51, "/blocks"),
        ([{"type": "nonsense"}], "/blocks/0"),
        (
            [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
            "/blocks/0/text/text",
        ),
        ([{"type": "actions", "elements": [{"type": "button"}] * 26}], "/blocks/0/elements"),
        (["not an object"], "/blocks/0"),
        (
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
            "/blocks/0/fields",
        ),
        (
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
            "/blocks/0/fields/0/text",
        ),
    ],
)
async def test_malformed_or_oversized_blocks_are_invalid_blocks(
    client: AsyncWebClient, blocks: list[object], pointer: str
) -> None:
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel="C1", text="fallback", blocks=blocks)
    assert raised.value.response["error"] == "invalid_blocks"
    assert f"[json-pointer:{pointer}]" in raised.value.response["response_metadata"]["messages"][0]


async def test_fifty_blocks_and_a_markdown_block_are_accepted(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    blocks = [{"type": "markdown", "text": "**x**"}] + [{"type": "divider"}] * 49
    posted = await client.chat_postMessage(channel="C1", text="fallback", blocks=blocks)
    assert len(slack.message(posted["ts"]).blocks or []) == 50
    too_much = [{"type": "markdown", "text": "y" * 6001}] * 2
    assert await error_of(client.chat_postMessage(channel="C1", text="t", blocks=too_much)) == (
        "msg_blocks_too_long"
    )


async def test_ephemeral_messages_go_to_members_only(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    await client.chat_postEphemeral(channel="C1", user="U1", text="only you")
    assert [(e.user, e.text, e.source) for e in slack.ephemerals] == [
        ("U1", "only you", "chat.postEphemeral")
    ]
    slack.add_user("U9")
    ephemeral = client.chat_postEphemeral(channel="C1", user="U9", text="x")
    assert await error_of(ephemeral) == "user_not_in_channel"


async def test_status_lookups_and_reactions(slack: FakeSlack, client: AsyncWebClient) -> None:
    ts = await slack.user_message("DU1", "U1", "hello")
    await client.assistant_threads_setStatus(channel_id="DU1", thread_ts=ts, status="is thinking…")
    await client.assistant_threads_setStatus(channel_id="DU1", thread_ts=ts, status="")
    assert [s.status for s in slack.statuses] == ["is thinking…", ""]
    assert (await client.conversations_info(channel="DU1"))["channel"]["is_im"] is True
    assert (await client.users_info(user="U1"))["user"]["is_bot"] is False
    assert await error_of(client.users_info(user="UNOPE")) == "user_not_found"
    await client.reactions_add(channel="DU1", timestamp=ts, name="eyes")
    assert slack.message(ts).reactions == {"eyes": ["UBOT"]}
    assert await error_of(client.reactions_add(channel="DU1", timestamp=ts, name="eyes")) == (
        "already_reacted"
    )
    await client.reactions_remove(channel="DU1", timestamp=ts, name="eyes")
    assert slack.message(ts).reactions == {"eyes": []}


async def test_every_call_is_recorded_with_its_arguments_from_any_encoding(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    await client.chat_postMessage(channel="C1", text="json body")
    await client.api_call("chat.postMessage", data={"channel": "C1", "text": "form body"})
    await client.api_call("chat.postMessage", params={"channel": "C1", "text": "query"})
    assert [c.args["text"] for c in slack.calls_to("chat.postMessage")] == [
        "json body",
        "form body",
        "query",
    ]
    assert all(c.ok and c.status == 200 for c in slack.calls)
    assert [m.text for m in slack.messages("C1")] == ["json body", "form body", "query"]


async def test_wait_for_wakes_on_changes_and_notify_and_times_out(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    posting = asyncio.ensure_future(client.chat_postMessage(channel="C1", text="awaited"))
    found = await slack.wait_for(lambda: [m.text for m in slack.messages("C1")], timeout=5)
    assert found == ["awaited"]
    await posting
    outside: list[str] = []

    async def record_later() -> None:
        outside.append("x")
        slack.notify()

    asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(record_later()))
    assert await slack.wait_for(lambda: outside, timeout=5) == ["x"]
    with pytest.raises(TimeoutError):
        await slack.wait_for(lambda: False, timeout=0.05)


async def test_a_user_id_posts_into_the_dm_and_conversations_open_finds_it(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    slack.add_user("U7")
    opened = await client.conversations_open(users="U7")
    dm = opened["channel"]["id"]
    assert (await client.conversations_open(users="U7"))["channel"]["id"] == dm
    posted = await client.chat_postMessage(channel="U7", text="hello in the DM")
    assert posted["channel"] == dm
    assert [m.text for m in slack.messages(dm)] == ["hello in the DM"]
    assert (await client.conversations_info(channel=dm))["channel"]["user"] == "U7"
    assert await error_of(client.conversations_open(users="UNOPE")) == "user_not_found"


async def test_a_request_the_fake_cannot_handle_is_a_500_fatal_error(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    def broken(state: object, args: object) -> dict[str, object]:
        raise TypeError("a bug")

    slack.web_api.methods = {**slack.web_api.methods, "broken.method": broken}
    with pytest.raises(SlackApiError) as raised:
        await client.api_call("broken.method")
    assert (raised.value.response.status_code, raised.value.response["error"]) == (
        500,
        "fatal_error",
    )
    assert slack.calls_to("broken.method")[0].outcome == "fatal_error"


async def test_a_user_reply_to_an_unknown_thread_is_a_test_error(slack: FakeSlack) -> None:
    with pytest.raises(KeyError, match=r"no message 1\.2 in C1"):
        await slack.user_message("C1", "U1", "reply", thread_ts="1.2")


def test_the_fake_imports_no_slack_sdk_and_is_exported_lazily() -> None:
    code = (
        "import sys, hotplex.testing as t\n"
        "assert 'hotplex.testing.slack' not in sys.modules\n"
        "from hotplex.testing import FakeSlack\n"
        "import hotplex.testing.slack as s\n"
        "assert FakeSlack is s.FakeSlack\n"
        "assert not [m for m in sys.modules if m.startswith(('slack_sdk', 'slack_bolt'))]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
