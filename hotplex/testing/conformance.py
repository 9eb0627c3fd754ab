"""The behaviours every provider must have, as a pytest test class to subclass.

Subclass :class:`ProviderConformance` in a test module (the name must start with ``Test``),
give it a ``provider`` fixture and the scripts of your agent's fake model, and pytest runs:

- ``test_hot_turn_keeps_context``: two turns on one live agent; the second sees the first.
- ``test_interrupt_mid_turn``: ``interrupt()`` ends a streaming turn with ``done`` status
  ``interrupted`` (no error) within ``interrupt_timeout``, and the next turn works.
- ``test_tool_allowed_by_the_gate`` / ``test_tool_denied_by_the_gate``: the gate given to
  ``start`` decides; allowed, the tool runs and its result arrives; denied, it does not run
  and the agent is told why.
- ``test_process_death_is_reported``: the agent's process killed mid-turn ends the turn with
  an ``error`` event (with a ``code``) and ``done``, without hanging.
- ``test_close_kills_the_process_group``: after ``close()`` (and the provider's ``aclose()``)
  no process of the agent's group is left.

Only the interfaces are used (:class:`~hotplex.interfaces.Provider`,
:class:`~hotplex.interfaces.AgentProcess`, the ``ToolGate`` callable); no engine. The scripts
say what to prompt so that your fake model does each thing (every fake speaks its own wire);
:class:`FakeAnthropicScripts` has them for agents that talk to
:class:`~hotplex.testing.fake_anthropic.FakeAnthropic`. docs/plugins.md shows an example.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from hotplex.events import AgentEvent
from hotplex.interfaces import AgentProcess, Provider
from hotplex.testing.conformance_kit import (
    FakeAnthropicScripts,
    FakeProviderScripts,
    RecordingGate,
    Script,
    check_turn,
    close_turn,
    collect,
    read_until,
    run_turn,
)
from hotplex.testing.procs import group_members, wait_group_gone
from hotplex.testing.turns import texts
from hotplex.types import AgentStartSpec

__all__ = [
    "FakeAnthropicScripts",
    "FakeProviderScripts",
    "ProviderConformance",
    "RecordingGate",
    "Script",
]

DENIAL = "conformance says no"
_MISSING = "{} is not defined: see ProviderConformance, or mix in FakeAnthropicScripts"


class ProviderConformance:
    """Provider behaviours as tests; subclass it as ``class TestMine(ProviderConformance)``.

    Fixtures to define: ``provider`` (required; any scope), ``agent_env`` (the agents'
    environment; default PATH and HOME) and ``provider_to_close`` (a provider the close test
    may ``aclose()``; default ``provider``, so override it when ``provider`` is shared).
    Scripts to define: :meth:`script_hello`, :meth:`script_recall`, :meth:`script_long` and
    :meth:`script_tool`. :meth:`agent_group` and :meth:`kill_agent` have defaults for agents
    with a process of their own (``AgentProcess.pid`` leads its process group).
    """

    #: Seconds one ordinary turn may take.
    turn_timeout: float = 60.0
    #: Seconds from ``interrupt()`` to the turn's ``done``.
    interrupt_timeout: float = 10.0
    #: Seconds from the kill to the turn's ``done``.
    death_timeout: float = 30.0
    #: Seconds from ``close()`` until the group must be gone.
    close_timeout: float = 15.0

    # -- fixtures a subclass provides ---------------------------------------------------

    @pytest.fixture
    def provider(self) -> Provider:
        raise NotImplementedError("define a `provider` fixture in your ProviderConformance")

    @pytest.fixture
    def provider_to_close(self, provider: Provider) -> Provider:
        return provider

    @pytest.fixture
    def agent_env(self) -> Mapping[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ["HOME"]}

    # -- hooks -----------------------------------------------------------------------------

    def start_spec(self, tmp_path: Path, name: str, env: Mapping[str, str]) -> AgentStartSpec:
        """The spec of one test's agent (a fresh work and state directory under tmp_path)."""
        return AgentStartSpec(
            session_id=name,
            provider_session_id=str(uuid.uuid4()),
            resume=False,
            work_dir=tmp_path / "work" / name,
            state_dir=tmp_path / "state" / name,
            env=dict(env),
        )

    def script_hello(self, provider: Provider, process: AgentProcess, word: str) -> Script:
        """A short turn whose reply text contains ``word``."""
        raise NotImplementedError(_MISSING.format("script_hello"))

    def script_recall(self, provider: Provider, process: AgentProcess, earlier: str) -> Script:
        """A turn whose reply can only contain ``earlier`` (an earlier prompt of this session)
        if the agent still has the conversation: ``says`` = ``earlier``."""
        raise NotImplementedError(_MISSING.format("script_recall"))

    def script_long(self, provider: Provider, process: AgentProcess) -> Script:
        """A turn that streams text for several seconds (interrupted or killed once the first
        ``text_delta`` or ``text`` arrives)."""
        raise NotImplementedError(_MISSING.format("script_long"))

    def script_tool(
        self, provider: Provider, process: AgentProcess, path: Path, denial: str | None
    ) -> Script:
        """A turn in which the agent calls one tool that creates the file ``path``, then
        answers; ``says`` is what that answer contains only if the agent got the tool's
        result (``denial`` is None) or the gate's denial message ``denial``."""
        raise NotImplementedError(_MISSING.format("script_tool"))

    def agent_group(self, provider: Provider, process: AgentProcess) -> int | None:
        """The process group running this agent; None only for agents with no process."""
        return None if process.pid is None else os.getpgid(process.pid)

    async def kill_agent(self, provider: Provider, process: AgentProcess) -> None:
        """Kill the agent's process (group) as the OOM killer would."""
        group = self.agent_group(provider, process)
        assert group is not None, "override kill_agent for an agent with no process"
        os.killpg(group, signal.SIGKILL)

    # -- helpers -----------------------------------------------------------------------------

    @asynccontextmanager
    async def started(
        self, provider: Provider, spec: AgentStartSpec, gate: RecordingGate
    ) -> AsyncIterator[AgentProcess]:
        """An agent started for one test, closed when the block ends."""
        process = await asyncio.wait_for(provider.start(spec, gate), self.turn_timeout)
        try:
            yield process
        finally:
            await asyncio.wait_for(process.close(), self.close_timeout)

    # -- the behaviours ----------------------------------------------------------------------

    async def test_hot_turn_keeps_context(
        self, provider: Provider, tmp_path: Path, agent_env: Mapping[str, str]
    ) -> None:
        spec = self.start_spec(tmp_path, _name(), agent_env)
        async with self.started(provider, spec, RecordingGate("allow")) as agent:
            hello = self.script_hello(provider, agent, "PLUM")
            first = await run_turn(agent, hello.prompt, self.turn_timeout)
            pid = agent.pid
            recall = self.script_recall(provider, agent, hello.prompt)
            second = await run_turn(agent, recall.prompt, self.turn_timeout)
            assert agent.alive and agent.pid == pid, "the agent was not kept hot"
        check_turn(first, "ok", says=hello.says)
        check_turn(second, "ok", says=recall.says)

    async def test_interrupt_mid_turn(
        self, provider: Provider, tmp_path: Path, agent_env: Mapping[str, str]
    ) -> None:
        spec = self.start_spec(tmp_path, _name(), agent_env)
        async with self.started(provider, spec, RecordingGate("allow")) as agent:
            await asyncio.wait_for(agent.interrupt(), self.interrupt_timeout)  # idle: no-op
            long = self.script_long(provider, agent)
            turn = agent.turn(long.prompt)
            try:
                seen = await read_until(turn, ("text_delta", "text"), self.turn_timeout)
                loop = asyncio.get_running_loop()
                start = loop.time()
                await asyncio.wait_for(agent.interrupt(), self.interrupt_timeout)
                rest = await collect(turn, self.interrupt_timeout)
                elapsed = loop.time() - start
            finally:
                await close_turn(turn)
            hello = self.script_hello(provider, agent, "AFTER")
            after = await run_turn(agent, hello.prompt, self.turn_timeout)
        check_turn(seen + rest, "interrupted")
        assert "error" not in [e.type for e in rest], rest
        assert elapsed < self.interrupt_timeout, elapsed
        check_turn(after, "ok", says=hello.says)

    async def test_tool_allowed_by_the_gate(
        self, provider: Provider, tmp_path: Path, agent_env: Mapping[str, str]
    ) -> None:
        gate = RecordingGate("allow")
        spec = self.start_spec(tmp_path, _name(), agent_env)
        async with self.started(provider, spec, gate) as agent:
            path = spec.work_dir / "allowed.txt"
            script = self.script_tool(provider, agent, path, None)
            events = await run_turn(agent, script.prompt, self.turn_timeout)
        result = _tool_result_after_use(events, gate)
        assert path.exists(), "the allowed tool did not run"
        assert not result.data["is_error"], result
        check_turn(events, "ok", says=script.says)

    async def test_tool_denied_by_the_gate(
        self, provider: Provider, tmp_path: Path, agent_env: Mapping[str, str]
    ) -> None:
        gate = RecordingGate("deny", DENIAL)
        spec = self.start_spec(tmp_path, _name(), agent_env)
        async with self.started(provider, spec, gate) as agent:
            path = spec.work_dir / "denied.txt"
            script = self.script_tool(provider, agent, path, DENIAL)
            events = await run_turn(agent, script.prompt, self.turn_timeout)
        assert not path.exists(), "the denied tool ran"
        result = _tool_result_after_use(events, gate)
        assert result.data["is_error"] and DENIAL in result.data["output"], result
        check_turn(events, "ok", says=script.says)

    async def test_process_death_is_reported(
        self, provider: Provider, tmp_path: Path, agent_env: Mapping[str, str]
    ) -> None:
        spec = self.start_spec(tmp_path, _name(), agent_env)
        async with self.started(provider, spec, RecordingGate("allow")) as agent:
            turn = agent.turn(self.script_long(provider, agent).prompt)
            try:
                seen = await read_until(turn, ("text_delta", "text"), self.turn_timeout)
                await self.kill_agent(provider, agent)
                rest = await collect(turn, self.death_timeout)
            finally:
                await close_turn(turn)
        check_turn(seen + rest, "error")
        errors = [e for e in rest if e.type == "error"]
        assert errors, f"the death was not reported: {[e.type for e in rest]}"
        code = errors[0].data.get("code")
        assert isinstance(code, str) and code, errors[0]

    async def test_close_kills_the_process_group(
        self, provider_to_close: Provider, tmp_path: Path, agent_env: Mapping[str, str]
    ) -> None:
        provider = provider_to_close
        gate = RecordingGate("allow")
        spec = self.start_spec(tmp_path, _name(), agent_env)
        async with self.started(provider, spec, gate) as agent:
            hello = self.script_hello(provider, agent, "BYE")
            check_turn(await run_turn(agent, hello.prompt, self.turn_timeout), "ok")
            group, pid = self.agent_group(provider, agent), agent.pid
            before = [] if group is None else group_members(group)
        await asyncio.wait_for(agent.close(), self.close_timeout)  # idempotent
        await asyncio.wait_for(provider.aclose(), self.close_timeout)
        assert not agent.alive, "alive after close()"
        if group is not None:
            assert group != os.getpgrp(), "the agent shares the test's process group"
            assert any(m.pid == pid for m in before), (pid, group, before)
            left = await wait_group_gone(group, self.close_timeout)
            assert left == [], f"left in group {group} after close: {left} (was {before})"
        await _turn_after_close(agent, self.turn_timeout)


def _name() -> str:
    return f"conformance-{uuid.uuid4().hex[:8]}"


def _tool_result_after_use(events: list[AgentEvent], gate: RecordingGate) -> AgentEvent:
    kinds = [e.type for e in events]
    assert "tool_use" in kinds and "tool_result" in kinds, kinds
    use = events[kinds.index("tool_use")]
    result = events[kinds.index("tool_result")]
    assert kinds.index("tool_use") < kinds.index("tool_result"), kinds
    assert result.data["tool_use_id"] == use.data["tool_use_id"], (use, result)
    assert gate.requests, "the tool ran without asking the gate"
    assert {r.tool for r in gate.requests} == {use.data["name"]}, gate.requests
    return result


async def _turn_after_close(agent: AgentProcess, timeout: float) -> None:
    """A turn on a closed agent fails at once: it raises, or ends with ``done`` error."""
    try:
        events = await run_turn(agent, "are you there?", timeout)
    except (TimeoutError, AssertionError):
        raise
    except Exception:
        return
    assert events and events[-1].data.get("status") == "error", texts(events)
