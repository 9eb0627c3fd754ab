"""Slack events as core's messages: addresses, dedup keys, what starts no turn, mentions,
thread following and multi-bot mode (pure functions, no network)."""

from __future__ import annotations

from typing import Any

import pytest
from hotplex_slack.events import BotIdentity, to_message

BOT = BotIdentity(team_id="T1", user_id="UBOT", bot_id="BBOT")


async def no_download(url: str) -> bytes:
    raise AssertionError("not downloaded while mapping")


def body(event_id: str = "Ev1", **event: Any) -> dict[str, Any]:
    event.setdefault("type", "message")
    event.setdefault("channel", "C1")
    event.setdefault("user", "U1")
    event.setdefault("ts", "1700000000.000100")
    return {"team_id": "T1", "event_id": event_id, "token": "legacy", "event": event}


def mapped(data: dict[str, Any], **kwargs: Any) -> Any:
    return to_message(data, BOT, download=no_download, **kwargs)


def test_a_dm_is_direct_and_answered_in_its_own_thread() -> None:
    message = mapped(body(channel="D1", channel_type="im", text="hello"))
    assert message.address == "slack:T1/D1/1700000000.000100"
    assert message.direct and not message.mentions_bot and not message.from_bot
    assert message.user == "slack:U1" and message.platform == "slack"
    assert message.text == "hello"
    assert message.message_key == "slack:T1/D1/1700000000.000100"
    assert "token" not in (message.raw or {})  # the legacy verification token is not kept


def test_a_reply_in_a_thread_goes_to_that_thread() -> None:
    message = mapped(body(text="<@UBOT> more", thread_ts="1700000000.000001"))
    assert message.address == "slack:T1/C1/1700000000.000001"
    assert message.ref.message_id == "1700000000.000100"


def test_app_mention_and_message_of_one_post_share_the_message_key() -> None:
    text = "<@UBOT> please look"
    mention = mapped(body("EvA", type="app_mention", text=text))
    message = mapped(body("EvB", channel_type="channel", text=text))
    assert mention.event_id != message.event_id
    assert mention.message_key == message.message_key
    assert mention.mentions_bot and message.mentions_bot
    assert mention.text == message.text == "please look"


@pytest.mark.parametrize(
    "subtype",
    [
        "message_changed",
        "message_deleted",
        "channel_join",
        "channel_leave",
        "channel_topic",
        "message_replied",
    ],
)
def test_edits_deletions_and_joins_start_nothing(subtype: str) -> None:
    assert mapped(body(subtype=subtype, text="<@UBOT> hi")) is None


def test_file_shares_and_broadcasts_are_messages() -> None:
    for subtype in ("file_share", "thread_broadcast"):
        assert mapped(body(subtype=subtype, text="<@UBOT> hi")) is not None


def test_our_own_posts_are_dropped_and_other_bots_marked() -> None:
    assert mapped(body(user="UBOT", text="echo")) is None
    assert mapped(body(user=None, bot_id="BBOT", text="echo")) is None
    other = mapped(body(user="UOTHER", bot_id="BOTHER", text="<@UBOT> hi"))
    assert other.from_bot and other.user == "slack:UOTHER"
    legacy = mapped(body(user=None, subtype="bot_message", bot_id="BOLD", text="<@UBOT> hi"))
    assert legacy.from_bot and legacy.user == "slack:BOLD"


def test_a_channel_message_without_mention_does_not_address_the_bot() -> None:
    message = mapped(body(channel_type="channel", text="chatter"))
    assert not message.mentions_bot and not message.direct


def test_a_followed_thread_counts_as_addressed_unless_multi_bot() -> None:
    data = body(channel_type="channel", text="and then?", thread_ts="1700000000.000001")

    def following(channel: str, thread: str) -> bool:
        return (channel, thread) == ("C1", "1700000000.000001")

    assert mapped(data, following=following).mentions_bot
    assert not mapped(data, following=lambda c, t: False).mentions_bot
    assert not mapped(data, following=following, multi_bot=True).mentions_bot


def test_multi_bot_mode_leaves_messages_for_other_bots_alone() -> None:
    for_other = body(channel_type="channel", text="<@UOTHERBOT> do it")
    assert mapped(for_other, multi_bot=True) is None
    assert mapped(for_other) is not None  # a single bot still sees it (and access decides)
    both = mapped(body(text="<@UOTHERBOT> <@UBOT> do it"), multi_bot=True)
    assert both.mentions_bot and both.text == "<@UOTHERBOT> do it"


def test_text_addressed_to_the_bot_can_be_a_chat_command() -> None:
    assert mapped(body(text="<@UBOT> /reset")).text == "/hotplex reset"
    assert mapped(body(text="<@UBOT> /hotplex status")).text == "/hotplex status"
    assert mapped(body(channel="D1", channel_type="im", text="/stop")).text == "/hotplex stop"
    assert mapped(body(text="<@UBOT> /usr/bin is missing")).text == "/usr/bin is missing"
    assert mapped(body(channel_type="channel", text="/reset")).text == "/reset"  # not for us


async def test_files_become_attachments_that_download_when_asked() -> None:
    fetched: list[str] = []

    async def download(url: str) -> bytes:
        fetched.append(url)
        return b"data"

    event = body(
        subtype="file_share",
        text="<@UBOT> see",
        files=[
            {
                "id": "F1",
                "name": "a.png",
                "mimetype": "image/png",
                "size": 4,
                "url_private_download": "http://x/F1/download",
                "url_private": "http://x/F1",
            },
            {
                "id": "F2",
                "name": "notes.txt",
                "mimetype": "text/plain",
                "size": 9,
                "url_private": "http://x/F2",
            },
            {"id": "F3", "mode": "tombstone"},
        ],
    )
    message = to_message(event, BOT, download=download)
    assert message is not None
    names = [(a.name, a.kind, a.size, a.mime) for a in message.attachments]
    assert names == [("a.png", "image", 4, "image/png"), ("notes.txt", "file", 9, "text/plain")]
    assert await message.attachments[0].download() == b"data"
    assert fetched == ["http://x/F1/download"]
