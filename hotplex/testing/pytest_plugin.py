"""Pytest plugin (entry point ``pytest11``): fixtures for HotPlex and its plugin authors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from hotplex.config import Settings, load_settings
from hotplex.plugins import HotplexPluginManager, make_plugin_manager
from hotplex.testing.fakes import FakeChatAdapter, FakeProvider


@pytest.fixture
def hotplex_plugins() -> HotplexPluginManager:
    """A plugin manager with the built-in core only (no entry points)."""
    return make_plugin_manager(entry_points=False, environ={})


@pytest.fixture
def hotplex_settings(tmp_path: Path, hotplex_plugins: HotplexPluginManager) -> Settings:
    """Default settings with data under tmp_path."""
    text = f"engine:\n  data_dir: {tmp_path / 'data'}\n"
    return load_settings(
        None, text=text, sections=hotplex_plugins.config_sections().values(), environ={}
    ).settings


@pytest.fixture
def fake_provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def fake_chat_adapter() -> FakeChatAdapter:
    return FakeChatAdapter()


@pytest.fixture
def claude_binary() -> Path:
    """The pinned Claude Code CLI (skips when missing; fails with CI=true)."""
    from hotplex.testing.real_cli import require_cli

    return require_cli("claude")


@pytest_asyncio.fixture  # also in pytest-asyncio's strict mode
async def fake_api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """A FakeAnthropic on 127.0.0.1, with ANTHROPIC_BASE_URL/ANTHROPIC_API_KEY pointing at
    it for the agents the test starts."""
    from hotplex.testing.fake_anthropic import FakeAnthropic

    async with FakeAnthropic() as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
        yield api


@pytest.fixture
async def running_hotplex(tmp_path: Path) -> AsyncIterator[Any]:
    """``hp = await running_hotplex(config={...}, capabilities=..., provider=...)``: a
    HotPlex built like the daemon, with the fake agent and the fake chat platform ``fake``
    (see :func:`hotplex.testing.running.running_hotplex`); stopped at the end of the test."""
    from contextlib import AsyncExitStack

    from hotplex.testing.running import RunningHotPlex
    from hotplex.testing.running import running_hotplex as start

    async with AsyncExitStack() as stack:
        count = 0

        async def open_one(**options: Any) -> RunningHotPlex:
            nonlocal count
            count += 1
            folder = tmp_path / f"hotplex{count}"
            return await stack.enter_async_context(start(folder, **options))

        yield open_one
