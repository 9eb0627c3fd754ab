"""Chat commands: one grammar in core.

On Slack every command goes through the one slash command (``/hotplex reset``); elsewhere a
message starting with ``/`` is a command (``/reset``). Plugins add commands with
``hotplex_register_commands`` (ChatCommandSpec).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from hotplex.identity import ADMIN
from hotplex.records import ChatCommandSpec

__all__ = ["ChatCommandContext", "ChatCommands", "parse_chat_command"]

SLASH_COMMAND = "/hotplex"
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class ChatCommandContext:
    """What a chat command's handler gets besides its argument text."""

    address: str
    user: str
    platform: str
    commands: ChatCommands
    services: Any = None
    session_key: str | None = None

    @property
    def prefix(self) -> str:
        """How commands are written on this platform: ``/hotplex `` on Slack, else ``/``."""
        return f"{SLASH_COMMAND} " if self.platform == "slack" else "/"


def parse_chat_command(text: str, *, platform: str) -> tuple[str, str] | None:
    """``("reset", "")`` for ``/reset`` (or ``/hotplex reset``); None for ordinary text,
    including paths such as ``/usr/bin is missing``."""
    head, _, rest = text.strip().partition(" ")
    if head == SLASH_COMMAND:
        name, _, rest = rest.strip().partition(" ")
        name = name or "help"
    elif platform == "slack" or not head.startswith("/"):
        return None
    else:
        name = head[1:]
    name = name.lower()
    if not _NAME.fullmatch(name):
        return None
    return name, rest.strip()


class ChatCommands:
    """The chat commands of a runtime; ``owners`` (``security.owners``) may run the
    privileged ones."""

    def __init__(
        self, specs: Mapping[str, ChatCommandSpec], *, owners: Collection[str] = ()
    ) -> None:
        self._specs = dict(specs)
        self._owners = frozenset(owners)

    def may_run(self, spec: ChatCommandSpec, user: str) -> bool:
        """Whether ``user`` may run ``spec``: anyone, or an owner for a privileged one."""
        return not spec.privileged or user in self._owners or user == ADMIN

    def specs(self) -> list[ChatCommandSpec]:
        return sorted(self._specs.values(), key=lambda s: s.name)

    async def handle(
        self,
        text: str,
        *,
        address: str,
        user: str,
        platform: str,
        services: Any = None,
        session_key: str | None = None,
    ) -> str | None:
        """Run the command in ``text`` and return its reply; None when it is no command."""
        parsed = parse_chat_command(text, platform=platform)
        if parsed is None:
            return None
        name, args = parsed
        spec = self._specs.get(name)
        if spec is None:
            prefix = f"{SLASH_COMMAND} " if platform == "slack" else "/"
            return f"Unknown command `{prefix}{name}`. Try `{prefix}help`."
        if not self.may_run(spec, user):
            prefix = f"{SLASH_COMMAND} " if platform == "slack" else "/"
            return f"`{prefix}{name}` is for owners only (security.owners)."
        ctx = ChatCommandContext(address, user, platform, self, services, session_key)
        return await spec.handler(args, ctx)
