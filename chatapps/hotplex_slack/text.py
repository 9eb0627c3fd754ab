"""Slack text: the escape of agent text and the bot's mention in a user's text."""

from __future__ import annotations

import re

__all__ = [
    "addressed_command",
    "mentioned_users",
    "slack_escape",
    "slack_unescape",
    "strip_mention",
]

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
_SPACES = re.compile(r"[ \t]{2,}")
_COMMAND = re.compile(r"/[a-z][a-z0-9_-]{0,31}(?:\s|$)")


def slack_escape(text: str) -> str:
    """Agent text shown literally: Slack reads ``<...>`` as mentions and links
    (``<!channel>``, ``<!here>``, ``<@U01>``), so ``&``, ``<`` and ``>`` become entities.
    Character by character, so the escape of a longer text extends its beginning's."""
    return "".join(_ENTITIES.get(char, char) for char in text)


def slack_unescape(text: str) -> str:
    """What a person wrote: Slack sends ``&``, ``<`` and ``>`` of message text as entities."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def mentioned_users(text: str) -> set[str]:
    """The user ids ``<@U..>`` mentions in ``text``."""
    return set(_MENTION.findall(text))


def strip_mention(text: str, bot_user_id: str | None) -> str:
    """``text`` without the bot's own mentions (the prompt is what follows them)."""
    if not bot_user_id:
        return text.strip()
    stripped = _MENTION.sub(lambda m: "" if m.group(1) == bot_user_id else m.group(0), text)
    return _SPACES.sub(" ", stripped).strip()


def addressed_command(text: str) -> str:
    """Text addressed to the bot that starts with ``/name`` is that chat command: Slack has
    one slash command, so core reads commands as ``/hotplex name``; ``/reset`` typed to the
    bot (where the slash command cannot go, in a thread) becomes ``/hotplex reset``."""
    if text.startswith("/hotplex") or not _COMMAND.match(text):
        return text
    return f"/hotplex {text[1:]}"
