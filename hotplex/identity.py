"""Namespaced identities: who a person (or a key) is, across every platform.

An identity is ``<platform>:<id>``: ``slack:U01ABC``, ``feishu:ou_x``, ``key:<api-key
name>``, ``web:<name>``. The platform prefix keeps the lists of approvers and owners
(``security.approvers``, ``security.owners``) from colliding across platforms: ``U01`` on
Slack and ``U01`` somewhere else are two people. Chat adapters put the identity of the
sender in ``IncomingMessage.user`` and pass it as ``by`` when a button is pressed.
"""

from __future__ import annotations

import re

__all__ = ["ADMIN", "ANYONE", "check_identity", "is_identity", "platform_of"]

#: An approver list holding ANYONE lets every identity decide.
ANYONE = "*"
#: The identity of an administrator (the gateway's admin token): may decide every request
#: and run every command. Not namespaced, so no platform's user can be it.
ADMIN = "admin"

_IDENTITY = re.compile(r"[a-z][a-z0-9_-]{0,31}:[^\s:][^\s]{0,255}")


def is_identity(text: str) -> bool:
    """Whether ``text`` is a namespaced identity (``slack:U01``)."""
    return bool(_IDENTITY.fullmatch(text))


def check_identity(text: str, *, allow_anyone: bool = False) -> str:
    """``text`` when it is a namespaced identity (or ``*``, with ``allow_anyone``); else
    ValueError saying what is expected."""
    if allow_anyone and text == ANYONE:
        return text
    if not is_identity(text):
        examples = "slack:U01ABC, feishu:ou_x, key:<api-key name>"
        raise ValueError(
            f"{text!r} is not a namespaced identity: write <platform>:<id> ({examples})"
            + (", or * for anyone" if allow_anyone else "")
        )
    return text


def platform_of(identity: str) -> str:
    """The platform prefix of an identity (``slack`` for ``slack:U01``)."""
    return identity.partition(":")[0]
