"""The provider conformance suite on the real pinned ``opencode serve`` and the fake Anthropic
API. One server (seconds to start) serves the module; the close check starts its own."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest
import pytest_asyncio

from hotplex.config import ProviderSettings
from hotplex.providers.opencode import OpenCodeProvider
from hotplex.testing.conformance import FakeAnthropicScripts, ProviderConformance
from hotplex.testing.fake_anthropic import FakeAnthropic
from hotplex.testing.real_cli import require_cli

pytestmark = [pytest.mark.real_cli, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_api() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as api:
        yield api


async def opencode(data_dir: Path) -> OpenCodeProvider:
    return OpenCodeProvider(
        ProviderSettings(type="opencode"),
        binary=require_cli("opencode"),
        data_dir=data_dir,
        health_interval=1.0,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_provider(
    tmp_path_factory: pytest.TempPathFactory, module_api: FakeAnthropic
) -> AsyncIterator[OpenCodeProvider]:
    provider = await opencode(tmp_path_factory.mktemp("opencode-data"))
    try:
        yield provider
    finally:
        await provider.aclose()


class TestOpenCode(FakeAnthropicScripts, ProviderConformance):
    """A session's ``pid`` is the shared server's: killing it is the process death, and the
    group that ``aclose()`` must leave empty is the server's."""

    long_turn = 8.0
    death_timeout = 45.0  # the server's watchdog sees the exit, then the turn ends

    @pytest.fixture
    def provider(self, module_provider: OpenCodeProvider) -> OpenCodeProvider:
        return module_provider

    @pytest_asyncio.fixture(loop_scope="module")
    async def provider_to_close(self, tmp_path: Path) -> AsyncIterator[OpenCodeProvider]:
        provider = await opencode(tmp_path / "own-server")
        try:
            yield provider
        finally:
            await provider.aclose()

    @pytest.fixture
    def agent_env(self, module_api: FakeAnthropic) -> Mapping[str, str]:
        return {
            "PATH": os.environ["PATH"],
            "HOME": os.environ["HOME"],
            "ANTHROPIC_BASE_URL": module_api.base_url,
            "ANTHROPIC_API_KEY": "sk-test",
        }
