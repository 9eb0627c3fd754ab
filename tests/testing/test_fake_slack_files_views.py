"""Files (attachments, download with the bot token, the external upload flow), modals with
their trigger_id rules, and response URLs, all through slack-sdk's AsyncWebClient."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from hotplex.testing.slack import FakeSlack


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def slack(clock: Clock) -> AsyncIterator[FakeSlack]:
    async with FakeSlack(clock=clock) as fake:
        fake.add_channel("C1", members=["U1", "U2"])
        fake.add_dm("U1")
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_base_url)


async def fetch(url: str, token: str | None) -> tuple[int, str, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, response.content_type, await response.read()


async def test_an_attached_file_downloads_with_the_bot_token_only(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    ts = await slack.user_message(
        "DU1",
        "U1",
        "see file",
        files=[{"name": "notes.txt", "content": "hello", "mimetype": "text/plain"}],
    )
    event = slack.deliveries[-1].payload["event"]
    assert event["subtype"] == "file_share"
    described = event["files"][0]
    assert (described["name"], described["size"], described["mimetype"]) == (
        "notes.txt",
        5,
        "text/plain",
    )
    assert slack.message(ts).files == event["files"]
    assert await fetch(described["url_private_download"], slack.bot_token) == (
        200,
        "text/plain",
        b"hello",
    )
    assert (await fetch(described["url_private"], slack.bot_token))[2] == b"hello"
    status, content_type, body = await fetch(described["url_private_download"], None)
    assert (status, content_type) == (200, "text/html")  # Slack's login page, not the file
    assert b"Sign in" in body
    info = await client.files_info(file=described["id"])
    assert info["file"]["url_private_download"] == described["url_private_download"]


async def test_files_upload_v2_shares_the_file_into_the_thread(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    parent = await slack.user_message("C1", "U1", "send me the log", mention=True)
    response = await client.files_upload_v2(
        channel="C1",
        thread_ts=parent,
        content=b"log line\n",
        filename="run.log",
        initial_comment="here",
    )
    assert response["file"]["id"] == slack.uploads[0].id
    upload = slack.uploads[0]
    assert (upload.name, upload.content, upload.channels, upload.thread_ts) == (
        "run.log",
        b"log line\n",
        ["C1"],
        parent,
    )
    shared = [m for m in slack.messages("C1", parent) if m.by_bot]
    assert [(m.text, m.subtype, m.files[0]["id"]) for m in shared] == [
        ("here", "file_share", upload.id)
    ]
    assert (await fetch(upload.url_private_download, slack.bot_token))[2] == b"log line\n"
    assert [c.method for c in slack.calls if c.method.startswith("files.")] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]


async def test_completing_an_upload_needs_the_bytes(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    url = await client.files_getUploadURLExternal(filename="a.txt", length=3)
    with pytest.raises(SlackApiError) as raised:
        await client.files_completeUploadExternal(files=[{"id": url["file_id"]}], channel_id="C1")
    assert raised.value.response["error"] == "file_not_found"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url["upload_url"], data=b"abcd") as r,
    ):
        assert r.status == 200
    with pytest.raises(SlackApiError) as mismatch:
        await client.files_completeUploadExternal(files=[{"id": url["file_id"]}], channel_id="C1")
    assert mismatch.value.response["error"] == "file_upload_size_does_not_match"


MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "deny_reason",
    "private_metadata": "req-1",
    "title": {"type": "plain_text", "text": "Deny tool call"},
    "submit": {"type": "plain_text", "text": "Deny"},
    "blocks": [
        {
            "type": "input",
            "block_id": "reason_block",
            "optional": True,
            "label": {"type": "plain_text", "text": "Reason"},
            "element": {"type": "plain_text_input", "action_id": "reason"},
        }
    ],
}

CARD = [
    {
        "type": "actions",
        "block_id": "appr",
        "elements": [
            {
                "type": "button",
                "action_id": "deny",
                "value": "req-1",
                "text": {"type": "plain_text", "text": "Deny"},
            }
        ],
    }
]


async def click(slack: FakeSlack, client: AsyncWebClient) -> dict[str, Any]:
    card = await client.chat_postMessage(channel="C1", text="approve?", blocks=CARD)
    delivery = await slack.click_button(card["ts"], "deny", "U2")
    return delivery.payload


async def test_a_click_carries_a_trigger_id_valid_three_seconds_once(
    slack: FakeSlack, client: AsyncWebClient, clock: Clock
) -> None:
    payload = await click(slack, client)
    assert payload["actions"][0]["value"] == "req-1"
    assert payload["user"]["id"] == "U2"
    assert payload["container"]["channel_id"] == "C1"
    opened = await client.views_open(trigger_id=payload["trigger_id"], view=MODAL)
    assert opened["view"]["callback_id"] == "deny_reason"
    assert slack.views[0].user == "U2"
    for trigger, error in [
        (payload["trigger_id"], "exchanged_trigger_id"),
        ("nope", "invalid_trigger_id"),
    ]:
        with pytest.raises(SlackApiError) as raised:
            await client.views_open(trigger_id=trigger, view=MODAL)
        assert raised.value.response["error"] == error
    late = await click(slack, client)
    clock.now += 3.01
    with pytest.raises(SlackApiError) as expired:
        await client.views_open(trigger_id=late["trigger_id"], view=MODAL)
    assert expired.value.response["error"] == "expired_trigger_id"


async def test_a_modal_title_over_24_characters_is_refused(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    payload = await click(slack, client)
    long_title = {**MODAL, "title": {"type": "plain_text", "text": "x" * 25}}
    with pytest.raises(SlackApiError) as raised:
        await client.views_open(trigger_id=payload["trigger_id"], view=long_title)
    assert raised.value.response["error"] == "invalid_arguments"


async def test_submit_view_sends_the_typed_values(slack: FakeSlack, client: AsyncWebClient) -> None:
    payload = await click(slack, client)
    await client.views_open(trigger_id=payload["trigger_id"], view=MODAL)
    delivery = await slack.submit_view(values={"reason_block": {"reason": "too risky"}})
    view = delivery.payload["view"]
    assert delivery.payload["type"] == "view_submission"
    assert view["private_metadata"] == "req-1"
    assert view["state"]["values"] == {
        "reason_block": {"reason": {"type": "plain_text_input", "value": "too risky"}}
    }
    assert delivery.payload["user"]["id"] == "U2"


async def test_response_urls_replace_post_ephemerally_and_expire(
    slack: FakeSlack, client: AsyncWebClient, clock: Clock
) -> None:
    payload = await click(slack, client)
    card_ts = payload["container"]["message_ts"]
    async with aiohttp.ClientSession() as session:

        async def respond(body: dict[str, Any]) -> int:
            async with session.post(payload["response_url"], json=body) as response:
                return response.status

        assert await respond({"text": "only you see this"}) == 200
        assert await respond({"replace_original": True, "text": "Denied by <@U2>"}) == 200
        assert await respond({"response_type": "in_channel", "text": "for all"}) == 200
        assert [(e.user, e.text, e.source) for e in slack.ephemerals] == [
            ("U2", "only you see this", "response_url")
        ]
        assert slack.message(card_ts).text == "Denied by <@U2>"
        assert slack.message(card_ts).blocks is None
        assert "for all" in [m.text for m in slack.messages("C1")]
        assert await respond({"text": "4"}) == 200
        assert await respond({"text": "5"}) == 200
        assert await respond({"text": "6"}) == 404  # five uses
        later = await click(slack, client)
        clock.now += 1801
        async with session.post(later["response_url"], json={"text": "late"}) as response:
            assert (response.status, (await response.json())["error"]) == (404, "expired_url")


async def test_the_upload_url_also_takes_a_multipart_form(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    url = await client.files_getUploadURLExternal(filename="b.bin", length=2)
    form = aiohttp.FormData()
    form.add_field("file", b"\x00\x01", filename="b.bin")
    async with aiohttp.ClientSession() as session, session.post(url["upload_url"], data=form) as r:
        assert (r.status, await r.text()) == (200, "OK - 2")
    await client.files_completeUploadExternal(files=[{"id": url["file_id"], "title": "B"}])
    assert [(u.content, u.title, u.channels) for u in slack.uploads] == [(b"\x00\x01", "B", [])]
    assert slack.messages("C1") == []  # completed without a channel: shared nowhere
