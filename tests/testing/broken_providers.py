"""Providers that each lack one behaviour, under the conformance suite. Not collected here:
test_conformance.py runs this file through pytester and checks which tests fail."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import pytest

from hotplex.events import AgentEvent
from hotplex.interfaces import AgentProcess, Provider, ToolGate
from hotplex.testing.conformance import FakeProviderScripts, ProviderConformance
from hotplex.testing.fakes import FakeAgentProcess, FakeProvider
from hotplex.types import AgentStartSpec, ToolDecision, ToolRequest


class Suite(FakeProviderScripts, ProviderConformance):
    interrupt_timeout = 2.0
    death_timeout = 2.0
    close_timeout = 2.0


# -- in-process fakes with one behaviour missing -------------------------------------------


class Forgetful(FakeAgentProcess):
    """Each turn starts a new conversation."""

    def turn(self, prompt: str) -> AsyncIterator[AgentEvent]:
        self.prompts.clear()
        return super().turn(prompt)


class Deaf(FakeAgentProcess):
    """``interrupt()`` does nothing."""

    async def interrupt(self) -> None:
        return None


class Careless(FakeAgentProcess):
    """Runs every tool without asking the gate."""

    def __init__(self, provider: FakeProvider, spec: AgentStartSpec, gate: ToolGate) -> None:
        async def allow(request: ToolRequest) -> ToolDecision:
            return ToolDecision("allow")

        super().__init__(provider, spec, allow)


class Mute(FakeAgentProcess):
    """Denies as the gate says, but drops the gate's message (the agent never hears why)."""

    def __init__(self, provider: FakeProvider, spec: AgentStartSpec, gate: ToolGate) -> None:
        async def without_message(request: ToolRequest) -> ToolDecision:
            return ToolDecision((await gate(request)).behavior)

        super().__init__(provider, spec, without_message)


class Silent(FakeAgentProcess):
    """Its death ends the turn with ``done`` status error, but no ``error`` event."""

    async def turn(self, prompt: str) -> AsyncIterator[AgentEvent]:
        async for event in super().turn(prompt):
            if event.type != "error":
                yield event


class Immortal(FakeAgentProcess):
    """Still alive after ``close()``."""

    async def close(self, grace: float = 5.0) -> None:
        return None


class Broken(FakeProvider):
    def __init__(self, kind: type[FakeAgentProcess]) -> None:
        super().__init__()
        self.kind = kind

    async def start(self, spec: AgentStartSpec, gate: ToolGate) -> AgentProcess:
        process = self.kind(self, spec, gate)
        self.processes.append(process)
        return process


class TestForgetful(Suite):
    @pytest.fixture
    def provider(self) -> Provider:
        return Broken(Forgetful)


class TestDeaf(Suite):
    @pytest.fixture
    def provider(self) -> Provider:
        return Broken(Deaf)


class TestCareless(Suite):
    @pytest.fixture
    def provider(self) -> Provider:
        return Broken(Careless)


class TestMute(Suite):
    @pytest.fixture
    def provider(self) -> Provider:
        return Broken(Mute)


class TestSilent(Suite):
    @pytest.fixture
    def provider(self) -> Provider:
        return Broken(Silent)


class TestImmortal(Suite):
    @pytest.fixture
    def provider(self) -> Provider:
        return Broken(Immortal)


# -- a fake whose turns run in-process next to a real process group ---------------------------

# a leader that forks one child into its own group, says so, and both sleep until killed
LEADER = """
import os, sys, time
if os.fork() != 0:
    print("ready", flush=True)
time.sleep(300)
"""


class WithProcess(FakeAgentProcess):
    """A fake agent with a real process (a leader and its child in a new session); the turn
    crashes when the leader dies. ``close()`` kills the group, or with ``leaky`` only the
    leader."""

    def __init__(
        self, provider: FakeProvider, spec: AgentStartSpec, gate: ToolGate, *, leaky: bool
    ) -> None:
        super().__init__(provider, spec, gate)
        self.leaky = leaky
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LEADER], start_new_session=True, stdout=subprocess.PIPE
        )
        self.watch: asyncio.Task[None] | None = None

    async def ready(self) -> None:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), 10)
        assert line == b"ready\n", line
        self.watch = asyncio.get_running_loop().create_task(self._watch())

    @property
    def pid(self) -> int | None:
        return self.proc.pid

    async def _watch(self) -> None:
        await asyncio.to_thread(self.proc.wait)
        self.crash()

    async def close(self, grace: float = 5.0) -> None:
        await super().close(grace)
        with contextlib.suppress(ProcessLookupError):
            if self.leaky:
                os.kill(self.proc.pid, signal.SIGKILL)
            else:
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self.watch is not None:
            await asyncio.wait_for(self.watch, 5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class ProcessProvider(FakeProvider):
    def __init__(self, *, leaky: bool) -> None:
        super().__init__()
        self.leaky = leaky
        self.groups: list[int] = []

    async def start(self, spec: AgentStartSpec, gate: ToolGate) -> AgentProcess:
        process = WithProcess(self, spec, gate, leaky=self.leaky)
        self.processes.append(process)
        self.groups.append(process.proc.pid)
        await process.ready()
        return process


@contextlib.contextmanager
def reaped(provider: ProcessProvider) -> Iterator[ProcessProvider]:
    """Kill what a leaky close left behind, after the test."""
    try:
        yield provider
    finally:
        for group in provider.groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)


class TestLeaky(Suite):
    @pytest.fixture
    def provider(self) -> Iterator[Provider]:
        with reaped(ProcessProvider(leaky=True)) as provider:
            yield provider

    async def kill_agent(self, provider: Provider, process: AgentProcess) -> None:
        await ProviderConformance.kill_agent(self, provider, process)


class TestTidy(TestLeaky):
    """The same with a close that kills the group: passes everything."""

    @pytest.fixture
    def provider(self) -> Iterator[Provider]:
        with reaped(ProcessProvider(leaky=False)) as provider:
            yield provider
