"""Who may start a turn: the access middleware (order 200, registered by core).

It decides from the typed fields of the incoming message (``direct``, ``mentions_bot``,
``from_bot``, ``user``, the address's channel) and the access keys of the section of the
message's platform (``plugins.<platform>``: ``dm_policy``, ``group_policy``,
``allow_users``, ``allow_channels``, ``allow_bots``; see
:class:`~hotplex.config.ChatAccessSettings`). A platform whose section lacks them (or has
none: the gateway's ``web``, whose messages are direct and whose callers hold API keys)
gets the defaults: direct messages open, group messages that mention the bot, no bots.

- A bot's message (``from_bot``, ours included) never starts a turn unless its identity is
  in ``allow_bots``; it gets no reply either (two bots must not answer each other).
- A direct message: ``dm_policy`` ``open`` (anyone in ``allow_users`` when it is set),
  ``allowlist`` (only ``allow_users``) or ``disabled``.
- A group message: ``group_policy`` ``mention`` (only messages that mention the bot),
  ``open``, ``allowlist`` (only ``allow_users``, no mention needed) or ``disabled``, in
  the channels of ``allow_channels`` when it is set.

A refused message gets no turn. Its sender is told why only where it helps and cannot
start a loop: in a direct chat, or when they mentioned the bot. The refusal is the fact
``refused`` (``access: <why>``).
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass

from hotplex.address import Address
from hotplex.context import PluginContext
from hotplex.errors import AddressError
from hotplex.interfaces import Middleware, MiddlewareContext, Next
from hotplex.types import IncomingMessage

__all__ = ["AccessMiddleware", "AccessRules", "Refusal", "rules_for"]

log = logging.getLogger(__name__)

NOT_ALLOWED = "You are not allowed to use this bot."
NO_DMS = "Direct messages to this bot are turned off."
NOT_HERE = "This bot does not answer in this channel."


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a message starts no turn, and what its sender is told (None: nothing)."""

    why: str
    reply: str | None = None


@dataclass(frozen=True, slots=True)
class AccessRules:
    """The access keys of one platform (the defaults: direct messages open, group messages
    that mention the bot, no bots)."""

    dm_policy: str = "open"
    group_policy: str = "mention"
    allow_users: tuple[str, ...] = ()
    allow_channels: tuple[str, ...] = ()
    allow_bots: tuple[str, ...] = ()

    def check(self, message: IncomingMessage) -> Refusal | None:
        """None when ``message`` may start a turn, else why not."""
        if message.from_bot and message.user not in self.allow_bots:
            return Refusal("a bot that is not in allow_bots")
        if message.direct:
            return self._direct(message)
        return self._group(message)

    def _user_allowed(self, message: IncomingMessage) -> bool:
        return not self.allow_users or message.user in self.allow_users or message.from_bot

    def _direct(self, message: IncomingMessage) -> Refusal | None:
        if self.dm_policy == "disabled":
            return Refusal("direct messages are disabled", NO_DMS)
        if self.dm_policy == "allowlist" and not (
            message.user in self.allow_users or message.user in self.allow_bots
        ):
            return Refusal("not in allow_users", NOT_ALLOWED)
        if not self._user_allowed(message):
            return Refusal("not in allow_users", NOT_ALLOWED)
        return None

    def _group(self, message: IncomingMessage) -> Refusal | None:
        # tell only someone who spoke to the bot; a channel's other chatter stays unanswered
        told = message.mentions_bot
        if self.group_policy == "disabled":
            return Refusal("group chats are disabled", NOT_HERE if told else None)
        if not self._channel_allowed(message.address):
            return Refusal("a channel not in allow_channels", NOT_HERE if told else None)
        if self.group_policy == "mention" and not message.mentions_bot:
            return Refusal("the bot was not mentioned")
        if self.group_policy == "allowlist" and not (
            message.user in self.allow_users or message.user in self.allow_bots
        ):
            return Refusal("not in allow_users", NOT_ALLOWED if told else None)
        if not self._user_allowed(message):
            return Refusal("not in allow_users", NOT_ALLOWED if told else None)
        return None

    def _channel_allowed(self, address: str) -> bool:
        if not self.allow_channels:
            return True
        try:
            parsed = Address.parse(address)
        except AddressError:
            return False
        channel = f"{parsed.platform}:{parsed.workspace}/{parsed.channel}"
        for entry in self.allow_channels:
            if ":" in entry and fnmatch.fnmatchcase(channel, entry):
                return True
            if entry == parsed.channel:
                return True
        return False


def rules_for(ctx: PluginContext, platform: str) -> AccessRules:
    """The access keys of ``plugins.<platform>`` (the defaults for those it lacks)."""
    section = ctx.settings.plugins.get(platform)
    if section is None:
        return AccessRules()
    defaults = AccessRules()
    return AccessRules(
        dm_policy=str(getattr(section, "dm_policy", defaults.dm_policy)),
        group_policy=str(getattr(section, "group_policy", defaults.group_policy)),
        allow_users=tuple(getattr(section, "allow_users", ())),
        allow_channels=tuple(getattr(section, "allow_channels", ())),
        allow_bots=tuple(getattr(section, "allow_bots", ())),
    )


class AccessMiddleware(Middleware):
    """The access policy of each platform, applied before the WAF (order 200)."""

    def __init__(self, ctx: PluginContext) -> None:
        self._ctx = ctx
        self._rules: dict[str, AccessRules] = {}

    def rules(self, platform: str) -> AccessRules:
        rules = self._rules.get(platform)
        if rules is None:
            rules = self._rules[platform] = rules_for(self._ctx, platform)
        return rules

    async def process(self, ctx: MiddlewareContext, call_next: Next) -> None:
        message = ctx.message
        refusal = self.rules(message.platform).check(message)
        if refusal is None:
            await call_next(ctx)
            return
        # the display name is shown, never trusted: anyone can choose it
        log.info(
            "%s message from %s (%s) refused: %s",
            message.platform,
            message.user,
            message.display_name or "no display name",
            refusal.why,
        )
        ctx.facts["refused"] = f"access: {refusal.why}"
        ctx.reply = refusal.reply
