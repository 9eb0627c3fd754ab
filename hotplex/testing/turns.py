"""Reading a turn's events in tests: the first event of a kind, and the text said."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Iterable

from hotplex.events import AgentEvent

__all__ = ["next_event", "texts"]


def texts(events: Iterable[AgentEvent]) -> str:
    """The ``text`` events' texts, joined with spaces."""
    return " ".join(e.data["text"] for e in events if e.type == "text")


async def next_event(
    turn: AsyncIterable[AgentEvent],
    kind: str,
    timeout: float,
    seen: list[AgentEvent] | None = None,
) -> AgentEvent:
    """Read ``turn`` up to its first ``kind`` event (keeping what was read in ``seen``);
    AssertionError when the turn ends first, TimeoutError after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        async for event in turn:
            if seen is not None:
                seen.append(event)
            if event.type == kind:
                return event
    raise AssertionError(f"the turn ended without a {kind} event")
