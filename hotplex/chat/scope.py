"""Which session a chat message belongs to, and the policy used when no access
middleware is installed."""

from __future__ import annotations

from typing import cast

from hotplex.address import Address, Scope, session_key
from hotplex.errors import AddressError
from hotplex.types import IncomingMessage

__all__ = ["conversation_key", "default_access"]


def conversation_key(message: IncomingMessage, scope: str = "thread") -> str:
    """The session key of ``message`` under its platform's ``session_scope`` (``thread``,
    ``channel`` or ``user``, see :func:`hotplex.address.session_key`). A message whose
    address is not a conversation address (an embedding program's key) is its own key."""
    try:
        address = Address.parse(message.address)
    except AddressError:
        return message.address
    if scope not in ("thread", "channel", "user"):
        raise AddressError(f"unknown session scope {scope!r}; use thread, channel or user")
    return session_key(address, cast(Scope, scope), user=message.user)


def default_access(message: IncomingMessage) -> bool:
    """Whether a message starts a turn when no ``access`` middleware is installed: never
    a bot's (ours included), a direct message always, a group message only when it
    mentions the bot."""
    if message.from_bot:
        return False
    return message.direct or message.mentions_bot
