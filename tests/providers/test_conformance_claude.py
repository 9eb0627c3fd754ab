"""The provider conformance suite on the real pinned Claude Code CLI and the fake Anthropic API."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from hotplex.config import ProviderSettings
from hotplex.providers.claude_code import ClaudeCodeProvider
from hotplex.testing.conformance import FakeAnthropicScripts, ProviderConformance
from hotplex.testing.fake_anthropic import FakeAnthropic

pytestmark = pytest.mark.real_cli


class TestClaudeCode(FakeAnthropicScripts, ProviderConformance):
    long_turn = 8.0

    @pytest.fixture
    def provider(self, claude_binary: Path) -> ClaudeCodeProvider:
        return ClaudeCodeProvider(ProviderSettings(binary=str(claude_binary)))

    @pytest.fixture
    def agent_env(self, fake_api: FakeAnthropic, tmp_path: Path) -> Mapping[str, str]:
        return {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path / "home"),
            "ANTHROPIC_BASE_URL": fake_api.base_url,
            "ANTHROPIC_API_KEY": "sk-test",
        }
