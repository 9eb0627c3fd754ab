"""The provider conformance suite on the test kit's fakes: the in-process FakeProvider, and
the Claude Code provider driving the fake agent CLI (a real process group of three)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from hotplex.config import ProviderSettings
from hotplex.interfaces import AgentProcess, Provider
from hotplex.providers.claude_code import ClaudeCodeProvider
from hotplex.testing.conformance import (
    FakeProviderScripts,
    ProviderConformance,
    RecordingGate,
    Script,
)
from hotplex.testing.fake_agent import write_wrapper
from hotplex.testing.fakes import FakeProvider
from hotplex.testing.procs import group_members


class TestFakeProvider(FakeProviderScripts, ProviderConformance):
    interrupt_timeout = 2.0
    death_timeout = 2.0

    @pytest.fixture
    def provider(self) -> FakeProvider:
        return FakeProvider()


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
