from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotplex.config import Settings, load_settings
from hotplex.testing.fake_anthropic import FakeAnthropic
from hotplex.testing.real_cli import require_cli


@pytest.fixture
def claude_binary() -> Path:
    return require_cli("claude")


@pytest.fixture
async def fake_api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
        yield api


@pytest.fixture
def claude_settings(tmp_path: Path, claude_binary: Path) -> Callable[..., Settings]:
    def make(**provider: Any) -> Settings:
        raw = {
            "engine": {"data_dir": str(tmp_path / "data")},
            "provider": {"binary": str(claude_binary), **provider},
        }
        return load_settings(None, text=yaml.safe_dump(raw), environ={}).settings

    return make
