"""Approved agent-tool calls, for agents that share one MCP server between sessions.

OpenCode runs one ``hotplex`` MCP server per work directory, not per session, so a tool call
reaching the bridge does not say which session made it. It does not have to: OpenCode asks
for permission before every MCP tool call (``permission.asked`` carries the session and the
call's id, whose tool part has the arguments), and the provider, on an allow, grants that
session the one call (directory, tool, arguments) before OpenCode may make it. The bridge
runs such a call only against a grant, which it uses up: no grant (denied, never asked,
expired), no handler.

Two sessions can hold grants for the same call only one after the other: a grant waits
while another session holds one for the same (directory, tool, arguments), so the call that
arrives always belongs to the one session holding grants for it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hotplex.tool_names import opencode_tool_name

__all__ = ["GRANT_TTL", "CallGrants", "Grant", "call_key", "opencode_tool_name"]

GRANT_TTL = 30.0
"""Seconds a grant stays usable; the call follows the approval at once."""


def call_key(directory: str, tool: str, arguments: Mapping[str, Any]) -> tuple[str, str, str]:
    text = json.dumps(dict(arguments), sort_keys=True, separators=(",", ":"), default=str)
    return (directory, tool, text)


@dataclass(eq=False)
class Grant:
    """One approved call of ``session_id`` (the id its agent was started under)."""

    session_id: str
    key: tuple[str, str, str]
    expires: float


class CallGrants:
    """The grants of one bridge; the provider adds them, the bridge takes them."""

    def __init__(
        self,
        tools: Iterable[str] = (),
        *,
        ttl: float = GRANT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        #: The OpenCode names of the bridge's tools (``hotplex_<name>``).
        self.tools = frozenset(tools)
        self.ttl = ttl
        self._clock = clock
        self._grants: list[Grant] = []
        self._changed = asyncio.Event()

    def _live(self) -> list[Grant]:
        now = self._clock()
        self._grants = [g for g in self._grants if g.expires > now]
        return self._grants

    def _signal(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def grant(
        self,
        session_id: str,
        directory: str,
        tool: str,
        arguments: Mapping[str, Any],
        *,
        timeout: float,
    ) -> Grant | None:
        """Let ``session_id`` run ``tool(arguments)`` once from ``directory``. Waits while
        another session holds a grant for the same call; None if it still does after
        ``timeout`` seconds."""
        key = call_key(directory, tool, arguments)
        deadline = time.monotonic() + timeout  # a wait in the event loop's time
        while True:
            others = [g for g in self._live() if g.key == key and g.session_id != session_id]
            if not others:
                grant = Grant(session_id, key, self._clock() + self.ttl)
                self._grants.append(grant)
                return grant
            if time.monotonic() >= deadline:
                return None
            expiry = min(g.expires for g in others) - self._clock()
            left = min(deadline - time.monotonic(), expiry)
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), max(0.01, left))
            except TimeoutError:
                pass

    def take(self, directory: str, tool: str, arguments: Mapping[str, Any]) -> str | None:
        """The session of a grant for this call, used up; None when there is none."""
        key = call_key(directory, tool, arguments)
        for grant in self._live():
            if grant.key == key:
                self._grants.remove(grant)
                self._signal()
                return grant.session_id
        return None

    def revoke(self, *grants: Grant) -> None:
        """Withdraw grants that were not used (the call ended, was aborted, or the session
        closed)."""
        before = len(self._grants)
        self._grants = [g for g in self._grants if g not in grants]
        if len(self._grants) != before:
            self._signal()

    def __len__(self) -> int:
        return len(self._live())
