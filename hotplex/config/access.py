"""The access keys a chat platform's config section shares (``plugins.<platform>``).

A chat plugin's section subclasses :class:`ChatAccessSettings` to get them; the access
middleware (:mod:`hotplex.chat.access`) reads them from the section of the message's
platform. A section without them is open (every person, no bot).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from hotplex.config.settings import PluginSettings
from hotplex.identity import check_identity

__all__ = ["ChatAccessSettings", "DmPolicy", "GroupPolicy"]

DmPolicy = Literal["open", "allowlist", "disabled"]
GroupPolicy = Literal["mention", "open", "allowlist", "disabled"]


class ChatAccessSettings(PluginSettings):
    """Who may start a turn on this platform, from the typed fields of each message."""

    dm_policy: DmPolicy = Field(
        "open", description="Direct messages: open | allowlist (allow_users only) | disabled."
    )
    group_policy: GroupPolicy = Field(
        "mention",
        description="Group chats: mention (only messages that mention the bot) | open | "
        "allowlist (allow_users only, mention not needed) | disabled.",
    )
    allow_users: tuple[str, ...] = Field(
        (), description="Identities who may use the bot, e.g. slack:U01 (empty: everyone)."
    )
    allow_channels: tuple[str, ...] = Field(
        (),
        description="Group chats the bot answers in: channel ids or address globs "
        "(empty: every channel).",
    )
    allow_bots: tuple[str, ...] = Field(
        (), description="Bot identities whose messages start turns (empty: no bot, ours neither)."
    )

    @field_validator("allow_users", "allow_bots")
    @classmethod
    def _identities(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(check_identity(v) for v in value)
