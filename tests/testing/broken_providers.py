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
time.sleep(120)
"""


class WithProcess(FakeAgentProcess):
    """A fake agent with a real process (a leader and its child in a new session); the turn
    crashes when the leader dies. ``close()`` kills the group, or with ``leaky`` only the
    leader; with ``cold`` every turn runs on a new process."""

    def __init__(
        self, provider: ProcessProvider, spec: AgentStartSpec, gate: ToolGate, *, leaky: bool
    ) -> None:
        super().__init__(provider, spec, gate)
        self.groups = provider.groups
        self.leaky = leaky
        self.watch: asyncio.Task[None] | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    async def spawn(self) -> None:
        self.proc = proc = subprocess.Popen(  # noqa: ASYNC220 - a test double, fast to start
            [sys.executable, "-c", LEADER], start_new_session=True, stdout=subprocess.PIPE
        )
        self.groups.append(proc.pid)
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 10)
        assert line == b"ready\n", line
        self.watch = asyncio.get_running_loop().create_task(self._watch(proc))

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    async def _watch(self, proc: subprocess.Popen[bytes]) -> None:
        await asyncio.to_thread(proc.wait)
        self.crash()

    async def stop(self, *, group: bool) -> None:
        watch, proc = self.watch, self.proc
        if watch is not None:
            watch.cancel()  # the thread waits on: the kill below ends it
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                os.kill(proc.pid, signal.SIGKILL)
        await asyncio.to_thread(proc.wait, 5)
        if proc.stdout is not None:
            proc.stdout.close()

    async def close(self, grace: float = 5.0) -> None:
        await super().close(grace)
        await self.stop(group=not self.leaky)


class Cold(WithProcess):
    """Starts a new process for every turn (the conversation is kept in memory)."""

    async def turn(self, prompt: str) -> AsyncIterator[AgentEvent]:
        if self.alive:
            await self.stop(group=True)
            await self.spawn()
        async for event in super().turn(prompt):
            yield event


class ProcessProvider(FakeProvider):
    def __init__(self, *, leaky: bool = False, cold: bool = False) -> None:
        super().__init__()
        self.leaky = leaky
        self.cold = cold
        self.groups: list[int] = []

    async def start(self, spec: AgentStartSpec, gate: ToolGate) -> AgentProcess:
        kind = Cold if self.cold else WithProcess
        process = kind(self, spec, gate, leaky=self.leaky)
        self.processes.append(process)
        await process.spawn()
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


class TestCold(TestLeaky):
    @pytest.fixture
    def provider(self) -> Iterator[Provider]:
        with reaped(ProcessProvider(cold=True)) as provider:
            yield provider


class TestTidy(TestLeaky):
    """The same with a close that kills the group: passes everything."""

    @pytest.fixture
    def provider(self) -> Iterator[Provider]:
        with reaped(ProcessProvider(leaky=False)) as provider:
            yield provider
