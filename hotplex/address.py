"""Conversation addresses and session keys.

An address names one conversation: ``platform:workspace/channel[/thread]``, e.g.
``slack:T01/C02/1700000000.000100``, ``feishu:tk/oc_x/om_root`` or ``web:default/s1``.
Relay bindings, cron and webhook targets, the admin API and the CLI all use this one parser.

A session key is an address reduced by the platform's scope (``thread``, ``channel`` or
``user``); its session id is a UUIDv5 of the key under ``engine.namespace``, so it is stable
across restarts.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Literal

from hotplex.errors import AddressError

__all__ = ["Address", "AddressLike", "Scope", "session_id_for", "session_key"]

Scope = Literal["thread", "channel", "user"]

_PLATFORM = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_SEGMENT = re.compile(r"[^\s/]{1,256}")


@dataclass(frozen=True, slots=True)
class Address:
    """A parsed conversation address; ``str(address)`` gives the canonical text back."""

    platform: str
    workspace: str
    channel: str
    thread: str | None = None

    def __post_init__(self) -> None:
        if not _PLATFORM.fullmatch(self.platform):
            raise AddressError(
                f"platform {self.platform!r}: use lowercase letters, digits, '-' or '_'"
            )
        for name in ("workspace", "channel", "thread"):
            value = getattr(self, name)
            if value is None and name == "thread":
                continue
            if not isinstance(value, str) or not _SEGMENT.fullmatch(value):
                raise AddressError(
                    f"{name} {value!r}: 1 to 256 characters without '/' or whitespace"
                )

    @classmethod
    def parse(cls, text: str) -> Address:
        """Parse ``platform:workspace/channel[/thread]``; raises AddressError saying why not."""
        platform, sep, rest = text.partition(":")
        if not sep:
            raise AddressError(f"address {text!r}: expected platform:workspace/channel[/thread]")
        parts = rest.split("/")
        if len(parts) not in (2, 3):
            raise AddressError(
                f"address {text!r}: expected platform:workspace/channel[/thread] "
                f"(2 or 3 segments after ':', got {len(parts)})"
            )
        try:
            return cls(platform, parts[0], parts[1], parts[2] if len(parts) == 3 else None)
        except AddressError as exc:
            raise AddressError(f"address {text!r}: {exc}") from None

    @classmethod
    def of(cls, value: Address | str) -> Address:
        """``value`` itself when it is an Address, else parsed (raises AddressError)."""
        return value if isinstance(value, Address) else cls.parse(value)

    def __str__(self) -> str:
        base = f"{self.platform}:{self.workspace}/{self.channel}"
        return f"{base}/{self.thread}" if self.thread is not None else base

    def with_thread(self, thread: str | None) -> Address:
        return Address(self.platform, self.workspace, self.channel, thread)


AddressLike = Address | str
"""Where the interfaces take an address: an :class:`Address` or its canonical text
(``Address.of(value)`` gives the parsed form, ``str(value)`` the text)."""


def session_key(address: Address, scope: Scope = "thread", *, user: str | None = None) -> str:
    """The session key of ``address`` under ``scope``.

    ``thread`` keeps the whole address, ``channel`` drops the thread, ``user`` keys the
    session by the user within the workspace (one session per person, wherever they write).
    """
    if scope == "thread":
        return str(address)
    if scope == "channel":
        return f"{address.platform}:{address.workspace}/{address.channel}"
    if scope == "user":
        if not user:
            raise AddressError("session scope 'user' needs the user id")
        return f"{address.platform}:{address.workspace}/@{user}"
    raise AddressError(f"unknown session scope {scope!r}; use thread, channel or user")


def session_id_for(key: str, namespace: uuid.UUID) -> str:
    """The stable session id of a session key (UUIDv5 under the engine namespace)."""
    return str(uuid.uuid5(namespace, key))
