"""Core starts the agent-tool bridge when a plugin registers tools, and every agent session
it starts gets the ``hotplex`` MCP server; without tools, nothing is started."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hotplex import hookimpl
from hotplex.agent_tools.bridge import active_socket
from hotplex.config import load_settings
from hotplex.engine import ENGINE
from hotplex.plugins import make_plugin_manager
from hotplex.records import AgentToolSpec, ProviderSpec
from hotplex.runtime import Runtime
from hotplex.testing.fakes import FakeProvider


def runtime_for(tmp_path: Path, *, tools: bool) -> tuple[Runtime, FakeProvider]:
    provider = FakeProvider()

    async def echo(args: dict[str, Any], ctx: Any) -> str:
        return str(args)

    class Plugin:
        @hookimpl
        def hotplex_register_providers(self) -> list[ProviderSpec]:
            return [ProviderSpec("fake", lambda ctx: provider)]

        @hookimpl
        def hotplex_register_agent_tools(self) -> list[AgentToolSpec]:
            schema = {"type": "object", "properties": {"text": {"type": "string"}}}
            return [AgentToolSpec("echo", "Echo", schema, echo)] if tools else []

    pm = make_plugin_manager(entry_points=False, environ={})
    pm.register(Plugin(), "tools")
    raw = {"engine": {"data_dir": str(tmp_path / "data")}, "provider": {"type": "fake"}}
    settings = load_settings(None, text=yaml.safe_dump(raw), environ={}).settings
    return Runtime(settings, pm), provider


async def test_registered_tools_reach_every_agent_session(tmp_path: Path) -> None:
    runtime, provider = runtime_for(tmp_path, tools=True)
    data_dir = tmp_path / "data"
    async with runtime:
        assert active_socket(data_dir) is not None
        engine = runtime.ctx.services.get(ENGINE)
        await (await engine.execute("k", "hi")).collect(5)
        servers = provider.processes[0].spec.mcp_servers
        assert set(servers) == {"hotplex"}
        assert "hotplex.agent_tools.stdio" in servers["hotplex"]["args"]
    assert active_socket(data_dir) is None  # stopped with the engine


async def test_no_tools_no_bridge(tmp_path: Path) -> None:
    runtime, provider = runtime_for(tmp_path, tools=False)
    async with runtime:
        engine = runtime.ctx.services.get(ENGINE)
        await (await engine.execute("k", "hi")).collect(5)
        assert active_socket(tmp_path / "data") is None
        assert dict(provider.processes[0].spec.mcp_servers) == {}
