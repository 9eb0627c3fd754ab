"""Pieces of the provider conformance suite (:mod:`hotplex.testing.conformance`): the script
record, a gate that records, turn reading and checking, and the scripts for agents that talk
to the fake Anthropic API and for the in-process fake provider."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hotplex.events import AgentEvent, agent_event
from hotplex.interfaces import AgentProcess, Provider
from hotplex.testing.fakes import FakeAgentProcess, FakeProvider, ToolCall
from hotplex.testing.turns import texts
from hotplex.types import ToolDecision, ToolRequest

__all__ = [
    "FakeAnthropicScripts",
    "FakeProviderScripts",
    "RecordingGate",
    "Script",
    "check_turn",
    "close_turn",
    "collect",
    "read_until",
    "run_turn",
]


@dataclass(frozen=True)
class Script:
    """What to prompt for one scenario, and a text the turn's ``text`` events must contain
    (empty: no check)."""

    prompt: str
    says: str = ""


class RecordingGate:
    """A ToolGate that answers every request the same way and keeps the requests."""

    def __init__(self, behavior: Literal["allow", "deny"], message: str = "") -> None:
        self.behavior: Literal["allow", "deny"] = behavior
        self.message = message
        self.requests: list[ToolRequest] = []

    async def __call__(self, request: ToolRequest) -> ToolDecision:
        self.requests.append(request)
        return ToolDecision(self.behavior, message=self.message)


async def collect(turn: AsyncIterator[AgentEvent], timeout: float) -> list[AgentEvent]:
    """The rest of a turn's events; TimeoutError after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        return [event async for event in turn]


async def run_turn(agent: AgentProcess, prompt: str, timeout: float) -> list[AgentEvent]:
    """One whole turn's events; TimeoutError after ``timeout`` seconds."""
    turn = agent.turn(prompt)
    try:
        return await collect(turn, timeout)
    finally:
        await close_turn(turn)


async def close_turn(turn: AsyncIterator[AgentEvent]) -> None:
    """Finish a turn's generator (a turn read only in part must be closed)."""
    aclose = getattr(turn, "aclose", None)
    if aclose is not None:
        await aclose()


async def read_until(
    turn: AsyncIterator[AgentEvent], kinds: Collection[str], timeout: float
) -> list[AgentEvent]:
    """A turn's events up to and including the first of ``kinds``; AssertionError when the
    turn ends first, TimeoutError after ``timeout`` seconds."""
    seen: list[AgentEvent] = []
    async with asyncio.timeout(timeout):
        async for event in turn:
            seen.append(event)
            if event.type in kinds:
                return seen
            if event.type == "done":
                break
    raise AssertionError(f"the turn ended before any of {sorted(kinds)}: {seen}")


def check_turn(events: list[AgentEvent], status: str, *, says: str = "") -> None:
    """A turn ends with exactly one ``done`` of ``status``, and its texts contain ``says``."""
    kinds = [e.type for e in events]
    assert kinds.count("done") == 1 and kinds[-1] == "done", kinds
    assert events[-1].data.get("status") == status, (status, events[-1], events)
    assert says in texts(events), f"{says!r} not in the reply {texts(events)!r}"


class FakeAnthropicScripts:
    """The scripts for agents whose model is :class:`~hotplex.testing.fake_anthropic.FakeAnthropic`
    (its prompt keywords: ``RECALL``, ``SLOW=<s>``, ``BASH: <command>``)."""

    #: Seconds the long turn streams for.
    long_turn: float = 10.0

    def script_hello(self, provider: Provider, process: AgentProcess, word: str) -> Script:
        return Script(f"hello {word}", says=f"echo: hello {word}")

    def script_recall(self, provider: Provider, process: AgentProcess, earlier: str) -> Script:
        # the fake answers from the request: only a request carrying the first turn has it
        return Script("RECALL", says=earlier)

    def script_long(self, provider: Provider, process: AgentProcess) -> Script:
        return Script(f"SLOW={self.long_turn:g} tell me a long story")

    def script_tool(
        self, provider: Provider, process: AgentProcess, path: Path, denial: str | None
    ) -> Script:
        if denial is not None:
            return Script(f"BASH: touch {path}", says=denial)
        return Script(f"BASH: touch {path} && echo made-{path.stem}", says=f"made-{path.stem}")


class FakeProviderScripts:
    """The scripts for :class:`~hotplex.testing.fakes.FakeProvider` (queued turns). Its
    context is the process's ``prompts``, its death :meth:`FakeAgentProcess.crash`; it has no
    process, so the close check is ``alive`` and a failing turn after ``close()``."""

    def script_hello(self, provider: Provider, process: AgentProcess, word: str) -> Script:
        return Script(f"hello {word}", says=f"echo: hello {word}")  # the default echo turn

    def script_recall(self, provider: Provider, process: AgentProcess, earlier: str) -> Script:
        assert isinstance(provider, FakeProvider)

        def recall(agent: FakeAgentProcess) -> AgentEvent:  # the prompts when the turn runs
            return agent_event("text", text="recall: " + " | ".join(agent.prompts[:-1]))

        provider.queue_turn(recall)
        return Script("RECALL", says=earlier)

    def script_long(self, provider: Provider, process: AgentProcess) -> Script:
        assert isinstance(provider, FakeProvider)
        provider.queue_turn(
            agent_event("text_delta", text="once upon a time"),
            agent_event("status", text="hang"),  # until interrupted
        )
        return Script("tell me a long story")

    def script_tool(
        self, provider: Provider, process: AgentProcess, path: Path, denial: str | None
    ) -> Script:
        assert isinstance(provider, FakeProvider)

        def touch(tool_input: object) -> str:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            return f"made-{path.stem}"

        provider.queue_turn(ToolCall("Write", {"file_path": str(path)}, run=touch, say_result=True))
        return Script("write a file", says=f"made-{path.stem}" if denial is None else denial)

    async def kill_agent(self, provider: Provider, process: AgentProcess) -> None:
        assert isinstance(process, FakeAgentProcess)
        process.crash()
