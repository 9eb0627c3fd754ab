"""Core builds one agent-tool bridge and hands it to the provider (the ``AGENT_TOOLS``
service, set before the provider's factory runs): it serves core's ``send_file`` and every
plugin's tools. The bridge opens no socket unless a provider asks for one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hotplex import hookimpl
from hotplex.agent_tools import AGENT_TOOLS, AgentToolBridge
from hotplex.compose import compose
from hotplex.config import load_settings
from hotplex.context import PluginContext
from hotplex.engine import ENGINE
from hotplex.plugins import make_plugin_manager
from hotplex.records import AgentToolSpec, ProviderSpec
from hotplex.runtime import Runtime
from hotplex.testing.fakes import FakeProvider


def runtime_for(
    tmp_path: Path, *, tools: bool, provider: str = "fake"
) -> tuple[Runtime, list[AgentToolBridge | None]]:
    handed: list[AgentToolBridge | None] = []

    def fake(ctx: PluginContext) -> FakeProvider:
        handed.append(ctx.services.find(AGENT_TOOLS))
        return FakeProvider()

    async def echo(args: dict[str, Any], ctx: Any) -> str:
        return str(args)

    class Plugin:
        @hookimpl
        def hotplex_register_providers(self) -> list[ProviderSpec]:
            return [ProviderSpec("fake", fake)]

        @hookimpl
        def hotplex_register_agent_tools(self) -> list[AgentToolSpec]:
            schema = {"type": "object", "properties": {"text": {"type": "string"}}}
            return [AgentToolSpec("echo", "Echo", schema, echo)] if tools else []

    pm = make_plugin_manager(entry_points=False, environ={})
    pm.register(Plugin(), "tools")
    raw = {"engine": {"data_dir": str(tmp_path / "data")}, "provider": {"type": provider}}
    settings = load_settings(None, text=yaml.safe_dump(raw), environ={}).settings
    return compose(settings, pm), handed


async def test_the_provider_factory_gets_the_bridge(tmp_path: Path) -> None:
    runtime, handed = runtime_for(tmp_path, tools=True)
    async with runtime:
        bridge = runtime.ctx.services.get(AGENT_TOOLS)
        assert handed == [bridge] and sorted(bridge.tools) == ["echo", "send_file"]
        assert bridge.audit == runtime.emit  # refusals reach the sinks
        engine = runtime.ctx.services.get(ENGINE)
        await (await engine.execute("k", "hi")).collect(5)
        assert not bridge.socket.serving  # nobody asked for the socket
    assert runtime.ctx.services.find(AGENT_TOOLS) is None  # gone with the engine


@pytest.mark.parametrize("provider", ["claude-code", "opencode"])
async def test_core_providers_serve_the_bridge(tmp_path: Path, provider: str) -> None:
    runtime, _ = runtime_for(tmp_path, tools=True, provider=provider)
    async with runtime:
        engine = runtime.ctx.services.get(ENGINE)
        assert engine.provider.agent_tools is runtime.ctx.services.get(AGENT_TOOLS)  # type: ignore[attr-defined]


async def test_without_plugin_tools_the_bridge_serves_cores(tmp_path: Path) -> None:
    runtime, handed = runtime_for(tmp_path, tools=False)
    async with runtime:
        engine = runtime.ctx.services.get(ENGINE)
        await (await engine.execute("k", "hi")).collect(5)
        bridge = runtime.ctx.services.get(AGENT_TOOLS)
        assert handed == [bridge] and list(bridge.tools) == ["send_file"]
