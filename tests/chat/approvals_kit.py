"""A running HotPlex with the fake provider and fake chat adapters (platform ``fake``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from hotplex import hookimpl
from hotplex.chat.approvals import CHAT_APPROVALS, ChatApprovals
from hotplex.compose import compose
from hotplex.config import ChatAccessSettings, Settings, load_settings
from hotplex.engine import ENGINE, Engine
from hotplex.events import AgentEvent
from hotplex.plugins import make_plugin_manager
from hotplex.records import ChatAdapterSpec, ConfigSection, ProviderSpec
from hotplex.runtime import OnMessage, Runtime
from hotplex.testing.fakes import FakeChatAdapter, FakeMessageOperations, FakeProvider


class FakeChatSettings(ChatAccessSettings):
    enabled: bool = Field(True)


@dataclass
class Running:
    runtime: Runtime
    provider: FakeProvider
    adapters: list[FakeChatAdapter] = field(default_factory=list)

    @property
    def engine(self) -> Engine:
        return self.runtime.ctx.services.get(ENGINE)

    @property
    def cards(self) -> ChatApprovals:
        return self.runtime.ctx.services.get(CHAT_APPROVALS)

    @property
    def ops(self) -> FakeMessageOperations:
        return self.adapters[-1].operations


def settings_for(tmp_path: Path, extra: dict[str, Any] | None = None) -> Settings:
    raw: dict[str, Any] = {
        "engine": {"data_dir": str(tmp_path / "data")},
        "provider": {"type": "fake"},
        "plugins": {"fake": {"enabled": True}},
    }
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return load_settings(
        None,
        text=yaml.safe_dump(raw),
        sections=[ConfigSection("fake", FakeChatSettings)],
        environ={},
    ).settings


@asynccontextmanager
async def running(
    tmp_path: Path,
    provider: FakeProvider,
    extra: dict[str, Any] | None = None,
    *,
    on_message: Callable[[Runtime], OnMessage] | None = None,
) -> AsyncIterator[Running]:
    """A runtime with ``provider`` and a FakeChatAdapter for the platform ``fake``."""
    adapters: list[FakeChatAdapter] = []

    def make_adapter(ctx: Any, config: Any) -> FakeChatAdapter:
        adapter = FakeChatAdapter()
        adapters.append(adapter)
        return adapter

    class Plugin:
        @hookimpl
        def hotplex_register_providers(self) -> list[ProviderSpec]:
            return [ProviderSpec("fake", lambda ctx: provider)]

        @hookimpl
        def hotplex_add_config(self) -> ConfigSection:
            return ConfigSection("fake", FakeChatSettings)

        @hookimpl
        def hotplex_register_chat_adapters(self) -> list[ChatAdapterSpec]:
            return [ChatAdapterSpec("fake", make_adapter)]

    pm = make_plugin_manager(entry_points=False, environ={})
    pm.register(Plugin(), "fakechat")
    holder: list[Runtime] = []

    async def deliver(adapter: Any, message: Any) -> None:
        assert on_message is not None
        await on_message(holder[0])(adapter, message)

    runtime = compose(settings_for(tmp_path, extra), pm, on_message=deliver if on_message else None)
    holder.append(runtime)
    async with runtime:
        yield Running(runtime, provider, adapters)


async def next_of(turn: Any, kind: str, timeout: float = 5.0) -> AgentEvent:
    from hotplex.testing.turns import next_event

    event: AgentEvent = await next_event(turn, kind, timeout)
    return event
