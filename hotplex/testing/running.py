"""A running HotPlex for tests, built through :func:`hotplex.compose.compose` like the
daemon: storage, sinks, the engine, the WAF, the middleware chain, the chat bridge, with a
:class:`~hotplex.testing.fakes.FakeProvider` as the agent and a
:class:`~hotplex.testing.fakes.FakeChatAdapter` enabled as the chat platform ``fake``::

    async with running_hotplex(tmp_path) as hp:
        await hp.adapter.dm("hello")
        await hp.ops.wait_for(lambda: "echo: hello" in hp.ops.texts())

The pytest fixture ``running_hotplex`` (``hotplex.testing.pytest_plugin``) starts one per
test: ``hp = await running_hotplex(config={...}, capabilities=...)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel

from hotplex.chat import CHAT_BRIDGE, ChatBridge
from hotplex.compose import compose
from hotplex.config import PluginSettings, load_settings
from hotplex.context import PluginContext
from hotplex.engine import ENGINE, Engine
from hotplex.hookspecs import hookimpl
from hotplex.interfaces import ChatAdapter
from hotplex.plugins import make_plugin_manager
from hotplex.records import ChatAdapterSpec, ConfigSection, ProviderSpec
from hotplex.runtime import Runtime
from hotplex.testing.fakes import FakeChatAdapter, FakeMessageOperations, FakeProvider
from hotplex.types import ChatCapabilities

__all__ = ["FakeChatSettings", "FakePlatformPlugin", "RunningHotPlex", "running_hotplex"]


class FakeChatSettings(PluginSettings):
    """``plugins.fake``: the fake chat platform's section."""

    enabled: bool = False
    session_scope: Literal["thread", "channel", "user"] = "thread"


class FakePlatformPlugin:
    """Registers ``adapter`` as the chat adapter ``fake`` (section ``plugins.fake``) and
    ``provider`` as the provider ``fake``."""

    def __init__(self, adapter: ChatAdapter, provider: FakeProvider) -> None:
        self.adapter = adapter
        self.provider = provider

    @hookimpl
    def hotplex_add_config(self) -> ConfigSection:
        return ConfigSection("fake", FakeChatSettings, "The fake chat platform of the tests.")

    @hookimpl
    def hotplex_register_chat_adapters(self) -> list[ChatAdapterSpec]:
        def factory(ctx: PluginContext, config: BaseModel) -> ChatAdapter:
            return self.adapter

        return [ChatAdapterSpec("fake", factory, "the fake chat platform")]

    @hookimpl
    def hotplex_register_providers(self) -> list[ProviderSpec]:
        return [ProviderSpec("fake", lambda ctx: self.provider, "queued fake turns")]


@dataclass
class RunningHotPlex:
    """A started HotPlex: its runtime, the fake agent and the fake chat platform."""

    runtime: Runtime
    provider: FakeProvider
    adapter: FakeChatAdapter

    @property
    def engine(self) -> Engine:
        return self.runtime.ctx.services.get(ENGINE)

    @property
    def bridge(self) -> ChatBridge:
        return self.runtime.ctx.services.get(CHAT_BRIDGE)

    @property
    def ops(self) -> FakeMessageOperations:
        return self.adapter.operations


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


@asynccontextmanager
async def running_hotplex(
    tmp_path: Path,
    *,
    config: Mapping[str, Any] | None = None,
    capabilities: ChatCapabilities | None = None,
    provider: FakeProvider | None = None,
    adapter: FakeChatAdapter | None = None,
    plugins: Iterable[tuple[str, Any]] = (),
) -> AsyncIterator[RunningHotPlex]:
    """Start HotPlex with data under ``tmp_path``; ``config`` is merged into the defaults
    (the fake provider, the fake chat platform enabled, no rate limits); ``plugins`` are
    more ``(name, plugin)`` pairs for the plugin manager."""
    provider = provider or FakeProvider()
    adapter = adapter or FakeChatAdapter(capabilities)
    raw = _merge(
        {
            "engine": {"data_dir": str(tmp_path / "data")},
            "provider": {"type": "fake"},
            "plugins": {"fake": {"enabled": True}},
        },
        config or {},
    )
    pm = make_plugin_manager(
        entry_points=False,
        environ={},
        extra=[("fake_platform", FakePlatformPlugin(adapter, provider)), *plugins],
    )
    settings = load_settings(
        None, text=yaml.safe_dump(raw), sections=pm.config_sections().values(), environ={}
    ).settings
    async with compose(settings, pm) as runtime:
        yield RunningHotPlex(runtime, provider, adapter)
