"""An HTTP-mode chat adapter serves its own routes as an instance (``http_routes``): the
gateway mounts ``/<name>/`` for each enabled adapter and hands requests to the running
instance's route with the same method and path, behind the route's declared auth."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import BaseModel

from hotplex import hookimpl
from hotplex.config import PluginSettings, load_settings
from hotplex.context import PluginContext
from hotplex.gateway.app import build_app
from hotplex.interfaces import ChatAdapter
from hotplex.plugins import make_plugin_manager
from hotplex.records import ChatAdapterSpec, ConfigSection, ProviderSpec, RouteSpec
from hotplex.runtime import Runtime
from hotplex.testing.fakes import FakeChatAdapter, FakeProvider

KEY = "k-routes-0123456789"


class HookSettings(PluginSettings):
    enabled: bool = True


class HttpAdapter(FakeChatAdapter):
    """A fake platform in HTTP mode: its callbacks are routes of this instance."""

    def __init__(self, serial: int) -> None:
        super().__init__()
        self.serial = serial
        self.hits: list[str] = []

    def http_routes(self) -> list[RouteSpec]:
        async def events(request: web.Request) -> web.Response:
            self.hits.append(await request.text())
            return web.Response(text=f"instance {self.serial}")

        async def keyed(request: web.Request) -> web.Response:
            return web.Response(text="keyed")

        async def stray(request: web.Request) -> web.Response:
            return web.Response(text="stray")

        return [
            RouteSpec("POST", "/hook/events", events, auth="none"),
            RouteSpec("GET", "/hook/keyed", keyed, auth="api_key"),
            RouteSpec("GET", "/elsewhere", stray, auth="none"),
        ]


def hook_plugin(built: list[HttpAdapter]) -> object:
    def adapter(ctx: PluginContext, config: BaseModel) -> ChatAdapter:
        built.append(HttpAdapter(len(built)))
        return built[-1]

    class Plugin:
        @hookimpl
        def hotplex_add_config(self) -> ConfigSection:
            return ConfigSection("hook", HookSettings)

        @hookimpl
        def hotplex_register_chat_adapters(self) -> list[ChatAdapterSpec]:
            return [ChatAdapterSpec("hook", adapter)]

    return Plugin()


class FakeProviderPlugin:
    @hookimpl
    def hotplex_register_providers(self) -> list[ProviderSpec]:
        return [ProviderSpec("fake", lambda ctx: FakeProvider())]


@asynccontextmanager
async def gateway(
    tmp_path: Path, hook: dict[str, Any], built: list[HttpAdapter]
) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    pm = make_plugin_manager(entry_points=False, environ={})
    pm.register(hook_plugin(built), "hook")
    pm.register(FakeProviderPlugin(), "fakeprov")
    raw = {
        "engine": {"data_dir": str(tmp_path / "data")},
        "provider": {"type": "fake"},
        "storage": {"enabled": False},
        "server": {"api_keys": [{"name": "tester", "key": KEY}]},
        "plugins": {"hook": hook},
    }
    settings = load_settings(
        None, text=yaml.safe_dump(raw), sections=pm.config_sections().values(), environ={}
    ).settings
    server = TestServer(build_app(Runtime(settings, pm)), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            yield str(server.make_url("")), http
    finally:
        await server.close()


async def test_the_running_instance_serves_its_routes(tmp_path: Path) -> None:
    built: list[HttpAdapter] = []
    async with gateway(tmp_path, {"enabled": True}, built) as (base, http):
        async with http.post(f"{base}/hook/events", data="ping") as resp:
            assert (resp.status, await resp.text()) == (200, "instance 0")
        assert built[0].hits == ["ping"]
        async with http.get(f"{base}/hook/events") as resp:  # wrong method
            assert resp.status == 404
        async with http.get(f"{base}/hook/nothing") as resp:
            assert resp.status == 404
        async with http.get(f"{base}/hook/keyed") as resp:  # the route's own auth applies
            assert resp.status == 401
        async with http.get(f"{base}/hook/keyed", headers={"X-API-Key": KEY}) as resp:
            assert (resp.status, await resp.text()) == (200, "keyed")
        async with http.get(f"{base}/elsewhere") as resp:  # outside /hook/: never served
            assert resp.status == 404


async def test_a_switched_off_adapter_mounts_nothing(tmp_path: Path) -> None:
    built: list[HttpAdapter] = []
    async with (
        gateway(tmp_path, {"enabled": False}, built) as (base, http),
        http.post(f"{base}/hook/events", data="ping") as resp,
    ):
        assert resp.status == 404
    assert built == []
