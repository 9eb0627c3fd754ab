"""The provider conformance suite on the test kit's fakes: the in-process FakeProvider, and
the Claude Code provider driving the fake agent CLI (a real process group of three)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from hotplex.config import ProviderSettings
from hotplex.events import agent_event
from hotplex.interfaces import AgentProcess, Provider
from hotplex.providers.claude_code import ClaudeCodeProvider
from hotplex.testing.conformance import ProviderConformance, RecordingGate, Script
from hotplex.testing.fake_agent import write_wrapper
from hotplex.testing.fakes import FakeAgentProcess, FakeProvider, ToolCall
from hotplex.testing.procs import group_members


def touch(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return f"made-{path.stem}"


class TestFakeProvider(ProviderConformance):
    """The in-process fake: its context is the process's ``prompts``, its death ``crash()``,
    and it has no process group (the close check is then ``alive`` and the turn after)."""

    interrupt_timeout = 2.0
    death_timeout = 2.0

    @pytest.fixture
    def provider(self) -> FakeProvider:
        return FakeProvider()

    def script_hello(self, provider: Provider, process: AgentProcess, word: str) -> Script:
        return Script(f"hello {word}", says=f"echo: hello {word}")  # FakeProvider's echo

    def script_recall(self, provider: Provider, process: AgentProcess, earlier: str) -> Script:
        assert isinstance(provider, FakeProvider) and isinstance(process, FakeAgentProcess)
        provider.queue_turn(agent_event("text", text="recall: " + " | ".join(process.prompts)))
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
        run = lambda _: touch(path)  # noqa: E731
        provider.queue_turn(ToolCall("Write", {"file_path": str(path)}, run=run, say_result=True))
        return Script("write a file", says=f"made-{path.stem}" if denial is None else denial)

    async def kill_agent(self, provider: Provider, process: AgentProcess) -> None:
        assert isinstance(process, FakeAgentProcess)
        process.crash()


class TestFakeAgentCli(ProviderConformance):
    """The Claude Code provider on the fake agent CLI, which forks two children into its
    process group and paces its deltas (so a long turn can be interrupted)."""

    interrupt_timeout = 5.0
    death_timeout = 10.0
    close_timeout = 10.0

    @pytest.fixture
    def provider(self, tmp_path: Path) -> ClaudeCodeProvider:
        pids = tmp_path / "fake-pids"
        binary = write_wrapper(
            tmp_path / "bin", "--fake-fork", "2", "--fake-slow", "0.2", "--fake-pid-file", str(pids)
        )
        return ClaudeCodeProvider(ProviderSettings(), binary=binary, init_timeout=10)

    @pytest.fixture
    def agent_env(self, tmp_path: Path) -> Mapping[str, str]:
        return {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}

    def script_hello(self, provider: Provider, process: AgentProcess, word: str) -> Script:
        return Script(f"hello {word}", says=f"echo: hello {word}")

    def script_recall(self, provider: Provider, process: AgentProcess, earlier: str) -> Script:
        return Script("what did I say first?", says=f"first: {earlier}")

    def script_long(self, provider: Provider, process: AgentProcess) -> Script:
        return Script("tell me " + "a very long story " * 15)  # 60 deltas, 0.2 s apart

    def script_tool(
        self, provider: Provider, process: AgentProcess, path: Path, denial: str | None
    ) -> Script:
        # the fake CLI's answer after a tool does not depend on the result: it only shows
        # that the turn went on
        return Script(f"RUN: touch {path}", says=f"done: touch {path}")

    async def test_the_group_is_counted_exactly(
        self, provider: ClaudeCodeProvider, tmp_path: Path, agent_env: Mapping[str, Any]
    ) -> None:
        """The close check's /proc count sees exactly the fake and its two children."""
        spec = self.start_spec(tmp_path, "count", agent_env)
        async with self.started(provider, spec, RecordingGate("allow")) as agent:
            assert agent.pid is not None
            written = [int(p) for p in (tmp_path / "fake-pids").read_text().split()]
            members = group_members(os.getpgid(agent.pid))
        assert [m.pid for m in members] == sorted(written) and len(written) == 3
        assert written[0] == agent.pid
