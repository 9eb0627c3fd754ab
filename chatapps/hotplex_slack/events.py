"""Slack events as core's :class:`~hotplex.types.IncomingMessage` (pure functions).

One post that mentions the bot arrives twice, as ``app_mention`` and as ``message``, with
different event ids: both map to the same ``message_key`` (``slack:TEAM/CHANNEL/TS``), so
core's inbound log starts one turn. A redelivery (an HTTP retry, a Socket Mode envelope sent
again) keeps its ``event_id`` and is dropped the same way, also after a restart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hotplex import Address
from hotplex.types import Attachment, IncomingMessage, MessageRef
from hotplex_slack.text import addressed_command, mentioned_users, slack_unescape, strip_mention

__all__ = ["BotIdentity", "Downloader", "attachments_of", "is_conversation", "to_message"]

#: Message subtypes that are something said (a file shared with text, a thread reply also
#: sent to the channel, a bot's post, marked ``from_bot``: core's access lets only
#: ``allow_bots`` through); every other subtype (edits, deletions, joins, topics) is none.
SAID = frozenset({None, "file_share", "thread_broadcast", "bot_message"})

#: What of the envelope is stored with the message (not its legacy ``token``).
_KEPT = ("team_id", "api_app_id", "event", "event_id", "event_time")

#: Fetches a file's bytes with the bot token (``url_private_download``).
Downloader = Callable[[str], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """Who this bot is in its workspace (from ``auth.test``)."""

    team_id: str
    user_id: str
    bot_id: str | None = None


def is_conversation(event: Mapping[str, Any]) -> bool:
    """Whether ``event`` (``message`` or ``app_mention``) is something said in a
    conversation, not an edit, a deletion, a join or another hidden change."""
    if event.get("hidden"):
        return False
    return event.get("subtype") in SAID and bool(event.get("channel")) and bool(event.get("ts"))


def attachments_of(event: Mapping[str, Any], download: Downloader) -> tuple[Attachment, ...]:
    """The files of a message; each downloads with the bot token when core asks."""
    found = []
    for file in event.get("files") or ():
        if not isinstance(file, Mapping):
            continue
        url = file.get("url_private_download") or file.get("url_private")
        if not isinstance(url, str):
            continue  # a file we cannot fetch (a tombstone, an external file)
        mime = file.get("mimetype") if isinstance(file.get("mimetype"), str) else None
        size = file.get("size") if isinstance(file.get("size"), int) else None

        async def fetch(url: str = url) -> bytes:
            return await download(url)

        found.append(
            Attachment(
                name=str(file.get("name") or file.get("title") or file.get("id") or "file"),
                size=size,
                mime=mime,
                kind="image" if mime and mime.startswith("image/") else "file",
                download=fetch,
                url=url,
            )
        )
    return tuple(found)


def to_message(
    body: Mapping[str, Any],
    bot: BotIdentity,
    *,
    download: Downloader,
    multi_bot: bool = False,
    following: Callable[[str, str], bool] = lambda channel, thread: False,
) -> IncomingMessage | None:
    """The message of an Events API ``body`` (its ``event`` a ``message`` or an
    ``app_mention``), or None when it is nobody speaking to a conversation (an edit, a
    join, our own post) or, with ``multi_bot``, speaks to another bot and not to us.

    The reply goes to the message's thread (its own ``ts`` when it starts one).
    ``following(channel, thread_ts)`` says whether the bot was mentioned earlier in that
    thread: a later reply there counts as addressed to it (``mentions_bot``), except with
    ``multi_bot``, where only a mention addresses a bot."""
    event = body.get("event")
    if not isinstance(event, Mapping) or not is_conversation(event):
        return None
    user_id = event.get("user")
    if user_id == bot.user_id or (bot.bot_id and event.get("bot_id") == bot.bot_id):
        return None  # our own post
    team = str(body.get("team_id") or event.get("team") or bot.team_id)
    channel, ts = str(event["channel"]), str(event["ts"])
    thread = str(event.get("thread_ts") or ts)
    raw_text = str(event.get("text") or "")
    direct = event.get("channel_type") == "im"
    mentioned = mentioned_users(raw_text)
    mentions_bot = bot.user_id in mentioned or event.get("type") == "app_mention"
    if not direct and not mentions_bot:
        if multi_bot and mentioned:
            return None  # addressed to someone else: that bot answers
        if not multi_bot and "thread_ts" in event and following(channel, thread):
            mentions_bot = True
    from_bot = bool(event.get("bot_id")) or event.get("subtype") == "bot_message"
    sender = user_id or event.get("bot_id") or "unknown"
    text = slack_unescape(strip_mention(raw_text, bot.user_id))
    if direct or mentions_bot:
        text = addressed_command(text)
    address = str(Address("slack", team, channel, thread))
    profile = event.get("user_profile")
    name = None
    if isinstance(profile, Mapping):
        name = profile.get("display_name") or profile.get("real_name")
    return IncomingMessage(
        address=address,
        text=text,
        user=f"slack:{sender}",
        platform="slack",
        event_id=str(body["event_id"]) if body.get("event_id") else None,
        message_key=f"slack:{team}/{channel}/{ts}",
        attachments=attachments_of(event, download),
        raw={k: body[k] for k in _KEPT if k in body},
        ref=MessageRef(address, ts),
        direct=direct,
        mentions_bot=mentions_bot,
        from_bot=from_bot,
        display_name=str(name) if name else None,
    )
