"""A plugin switched off (``enabled: false``, missing from ``plugins_enabled``, named in
``HOTPLEX_DISABLE_PLUGINS``) mounts, starts and offers nothing: no route, start-up resource,
shutdown callback, sink, middleware, chat command, chat adapter, agent tool, template folder
or doctor check. Its config section and CLI commands remain (docs/plugins.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from aiohttp import web
from pydantic import BaseModel

from hotplex import hookimpl
from hotplex.agent_tools import AGENT_TOOLS
from hotplex.config import PluginSettings, load_settings, plugin_off
from hotplex.context import PluginContext
from hotplex.errors import DuplicateNameError
from hotplex.events import AgentEvent, AuditEvent
from hotplex.gateway.app import build_app
from hotplex.interfaces import ChatAdapter, HookSink, Middleware, MiddlewareContext, Next
from hotplex.plugins import HotplexPluginManager, make_plugin_manager
from hotplex.records import (
    AgentToolSpec,
    ChatAdapterSpec,
    ChatCommandSpec,
    CheckResult,
    CommandSpec,
    ConfigSection,
    DoctorCheck,
    MiddlewareSpec,
    ProviderSpec,
    ResourceSpec,
    RouteSpec,
    ShutdownSpec,
    SinkSpec,
    TemplateSpec,
)
from hotplex.runtime import Runtime
from hotplex.testing.fakes import FakeChatAdapter, FakeProvider


class ExtraSettings(PluginSettings):
    enabled: bool = True


class Recorder:
    """Every factory or callback of the ``extra`` plugin that ran, by kind."""

    def __init__(self) -> None:
        self.ran: set[str] = set()


class NullSink(HookSink):
    async def handle(self, batch: Sequence[AgentEvent | AuditEvent]) -> None:
        return None


class PassThrough(Middleware):
    async def process(self, ctx: MiddlewareContext, call_next: Next) -> None:
        await call_next(ctx)


def extra_plugin(rec: Recorder) -> object:
    async def route(request: web.Request) -> web.Response:
        return web.Response(text="extra")

    @asynccontextmanager
    async def resource(ctx: PluginContext) -> AsyncIterator[None]:
        rec.ran.add("resource")
        yield

    async def shutdown(ctx: PluginContext) -> None:
        rec.ran.add("shutdown")

    def sink(ctx: PluginContext) -> HookSink:
        rec.ran.add("sink")
        return NullSink()

    def middleware(ctx: PluginContext) -> Middleware:
        rec.ran.add("middleware")
        return PassThrough()

    def adapter(ctx: PluginContext, config: BaseModel) -> ChatAdapter:
        rec.ran.add("adapter")
        return FakeChatAdapter()

    async def reply(args: str, ctx: Any) -> str:
        return "pong"

    async def tool(args: dict[str, Any], ctx: Any) -> str:
        return "ok"

    class Plugin:
        @hookimpl
        def hotplex_add_config(self) -> ConfigSection:
            return ConfigSection("extra", ExtraSettings)

        @hookimpl
        def hotplex_register_routes(self) -> list[RouteSpec]:
            return [RouteSpec("GET", "/extra/ping", route, auth="none")]

        @hookimpl
        def hotplex_startup(self) -> list[ResourceSpec]:
            return [ResourceSpec("extra-resource", resource)]

        @hookimpl
        def hotplex_shutdown(self) -> list[ShutdownSpec]:
            return [ShutdownSpec("extra-shutdown", shutdown)]

        @hookimpl
        def hotplex_register_sinks(self) -> list[SinkSpec]:
            return [SinkSpec("extra-sink", sink)]

        @hookimpl
        def hotplex_register_middleware(self) -> list[MiddlewareSpec]:
            return [MiddlewareSpec("extra-mw", middleware, order=600)]

        @hookimpl
        def hotplex_register_chat_adapters(self) -> list[ChatAdapterSpec]:
            return [ChatAdapterSpec("extra", adapter)]

        @hookimpl
        def hotplex_register_commands(self) -> list[object]:
            return [
                ChatCommandSpec("extraping", "answers pong", reply),
                CommandSpec(click.Command("extra-setup")),
            ]

        @hookimpl
        def hotplex_register_agent_tools(self) -> list[AgentToolSpec]:
            return [AgentToolSpec("extra_tool", "a tool", {"type": "object"}, tool)]

        @hookimpl
        def hotplex_register_templates(self) -> list[TemplateSpec]:
            return [TemplateSpec("extra", "hotplex.templates")]

        @hookimpl
        def hotplex_doctor_checks(self) -> list[DoctorCheck]:
            return [DoctorCheck("extra-check", lambda ctx: CheckResult(True, "fine"))]

    return Plugin()


def provider_plugin() -> object:
    class Plugin:
        @hookimpl
        def hotplex_register_providers(self) -> list[ProviderSpec]:
            return [ProviderSpec("fake", lambda ctx: FakeProvider())]

    return Plugin()


def build(
    tmp_path: Path,
    raw_extra: dict[str, Any] | None,
    *,
    environ: dict[str, str] | None = None,
    plugins_enabled: list[str] | None = None,
) -> tuple[Runtime, Recorder, HotplexPluginManager]:
    rec = Recorder()
    pm = make_plugin_manager(entry_points=False, environ=environ or {})
    pm.register(extra_plugin(rec), "extra")
    pm.register(provider_plugin(), "fakeprov")
    raw: dict[str, Any] = {
        "engine": {"data_dir": str(tmp_path / "data")},
        "provider": {"type": "fake"},
        "storage": {"enabled": False},
    }
    if raw_extra is not None:
        raw["plugins"] = {"extra": raw_extra}
    if plugins_enabled is not None:
        raw["plugins_enabled"] = plugins_enabled
    settings = load_settings(
        None, text=yaml.safe_dump(raw), sections=pm.config_sections().values(), environ={}
    ).settings
    return Runtime(settings, pm), rec, pm


def mounted_paths(runtime: Runtime) -> set[str]:
    app = build_app(runtime)
    return {r.canonical for r in app.router.resources()}


async def test_switched_on_plugin_registers_every_kind(tmp_path: Path) -> None:
    runtime, rec, _ = build(tmp_path, {"enabled": True})
    assert "/extra/ping" in mounted_paths(runtime)
    async with runtime:
        assert "extra" in runtime.adapters
        # core's own tool (send_file) beside the plugin's
        assert sorted(t["name"] for t in runtime.tool_catalog()) == ["extra_tool", "send_file"]
        assert sorted(runtime.ctx.services.get(AGENT_TOOLS).tools) == ["extra_tool", "send_file"]
        assert {s.name for s in runtime.chat_commands.specs()} >= {"extraping"}
        assert "extra" in runtime.ctx.plugins.templates()
        assert "extra-check" in {c.name for _, c in runtime.ctx.plugins.doctor_checks()}
    assert rec.ran == {"resource", "shutdown", "sink", "middleware", "adapter"}


OFF_CASES = {
    "enabled: false": ({"enabled": False}, None, None),
    "not in plugins_enabled": ({"enabled": True}, None, ["fakeprov"]),
    "HOTPLEX_DISABLE_PLUGINS": ({"enabled": True}, {"HOTPLEX_DISABLE_PLUGINS": "x,extra"}, None),
}


@pytest.mark.parametrize("case", list(OFF_CASES))
async def test_switched_off_plugin_mounts_starts_and_offers_nothing(
    tmp_path: Path, case: str
) -> None:
    raw_extra, environ, allow = OFF_CASES[case]
    runtime, rec, _ = build(tmp_path, raw_extra, environ=environ, plugins_enabled=allow)
    assert "extra" in runtime.ctx.plugins.switched_off()
    assert "/extra/ping" not in mounted_paths(runtime)
    async with runtime:
        assert runtime.adapters == {}
        # only core's own tool is offered, none of the plugin's
        assert [t["name"] for t in runtime.tool_catalog()] == ["send_file"]
        assert list(runtime.ctx.services.get(AGENT_TOOLS).tools) == ["send_file"]
        assert "extraping" not in {s.name for s in runtime.chat_commands.specs()}
        assert "extra" not in runtime.ctx.plugins.templates()
        assert "extra-check" not in {c.name for _, c in runtime.ctx.plugins.doctor_checks()}
    assert rec.ran == set()
    # what remains: the config section (the file still validates) and the CLI commands
    assert "extra" in runtime.ctx.plugins.config_sections()
    assert "extra-setup" in runtime.ctx.plugins.cli_commands()
    assert "extra" in runtime.settings.plugins


def test_the_rule(tmp_path: Path) -> None:
    runtime, _, _ = build(tmp_path, None)
    settings = runtime.settings
    # a section with an enabled key that was not set counts its default
    assert plugin_off(settings, "extra") is None
    off = plugin_off(settings, "extra", disabled={"extra"})
    assert off == "disabled by HOTPLEX_DISABLE_PLUGINS"
    assert plugin_off(settings, "core", disabled={"core"}) is None
    assert plugin_off(settings, "no-section") is None
    allow = settings.model_copy(update={"plugins_enabled": ("fakeprov",)})
    assert plugin_off(allow, "extra") == "not in plugins_enabled"
    assert plugin_off(allow, "core") is None


async def test_a_switched_off_plugins_names_do_not_clash(tmp_path: Path) -> None:
    """Switching one of two plugins off is how a duplicate name is resolved."""

    async def other(request: web.Request) -> web.Response:
        return web.Response(text="other")

    class Twin:
        @hookimpl
        def hotplex_register_routes(self) -> list[RouteSpec]:
            return [RouteSpec("GET", "/extra/ping", other, auth="none")]

    runtime, rec, pm = build(tmp_path, {"enabled": False})
    pm.register(Twin(), "twin")
    runtime = Runtime(runtime.settings, pm)
    assert "/extra/ping" in mounted_paths(runtime)  # the twin's, alone
    async with runtime:
        assert rec.ran == set()
    runtime, _, pm = build(tmp_path, {"enabled": True})
    pm.register(Twin(), "twin")
    with pytest.raises(DuplicateNameError):
        async with Runtime(runtime.settings, pm):
            pass
