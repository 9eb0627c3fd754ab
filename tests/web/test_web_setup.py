"""The newcomer's path: what ``hotplex serve`` prints on start, ``GET /api/v1/setup``,
the static files' headers, and the setup banner on the page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hotplex.compose import compose
from hotplex.config import load_settings
from hotplex.plugins import make_plugin_manager
from hotplex.testing.daemon import Daemon
from hotplex.testing.fake_agent import write_wrapper
from hotplex.web import add_web_routes, setup_lines, setup_report
from hotplex.web.setup import SETUP_CHECKS

CREDENTIALS_FIX = "export ANTHROPIC_API_KEY=sk-ant-..."
NO_CREDENTIALS = {"ANTHROPIC_API_KEY": "", "ANTHROPIC_AUTH_TOKEN": ""}

Client = TestClient[Any, Any]


@pytest.fixture
def web_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """``async with web_client(binary=..., env={...}) as client``: the web routes alone,
    for a config with that provider binary and the process environment patched."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def make(*, binary: str, env: dict[str, str]) -> AsyncIterator[Client]:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude"))
        raw = {"engine": {"data_dir": str(tmp_path / "data")}, "provider": {"binary": binary}}
        settings = load_settings(None, text=yaml.safe_dump(raw), environ={}).settings
        app = web.Application()
        add_web_routes(app, compose(settings, make_plugin_manager(entry_points=False, environ={})))
        async with TestClient(TestServer(app)) as client:
            yield client

    return make


async def test_setup_reports_missing_credentials_with_the_fix(
    web_client: Callable[..., Any], tmp_path: Path
) -> None:
    binary = str(write_wrapper(tmp_path / "bin"))
    async with web_client(binary=binary, env=NO_CREDENTIALS) as client:
        response = await client.get("/api/v1/setup")
        assert response.status == 200
        body = await response.json()
    assert body["ready"] is False and body["provider"] == "claude-code"
    provider, credentials = body["checks"]
    assert provider == {"name": "provider", "ok": True}  # no path of a working install
    assert credentials["name"] == "credentials" and credentials["ok"] is False
    assert "no Anthropic credentials" in credentials["detail"]
    assert CREDENTIALS_FIX in credentials["hint"]
    assert body["key_required"] is False and body["admin_token_required"] is False


async def test_setup_reports_a_missing_binary(
    web_client: Callable[..., Any], tmp_path: Path
) -> None:
    missing = str(tmp_path / "nowhere" / "claude")
    async with web_client(binary=missing, env={"ANTHROPIC_API_KEY": "sk-test"}) as client:
        body = await (await client.get("/api/v1/setup")).json()
    provider, credentials = body["checks"]
    assert body["ready"] is False
    assert provider["ok"] is False and "not found" in provider["detail"]
    assert "make setup" in provider["hint"]
    assert credentials == {"name": "credentials", "ok": True}
    assert "sk-test" not in str(body)


async def test_setup_ready(web_client: Callable[..., Any], tmp_path: Path) -> None:
    binary = str(write_wrapper(tmp_path / "bin"))
    async with web_client(binary=binary, env={"ANTHROPIC_API_KEY": "sk-test"}) as client:
        body = await (await client.get("/api/v1/setup")).json()
    assert body["ready"] is True
    assert [c["name"] for c in body["checks"]] == [name for name, _ in SETUP_CHECKS]


async def test_static_files(web_client: Callable[..., Any], tmp_path: Path) -> None:
    binary = str(write_wrapper(tmp_path / "bin"))
    async with web_client(binary=binary, env={}) as client:
        page = await client.get("/")
        assert page.status == 200 and page.content_type == "text/html"
        html = await page.text()
        assert '<script src="/web/app.js" defer></script>' in html
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        script = await client.get("/web/app.js")
        assert script.content_type == "text/javascript"
        assert "renderMarkdown" in await script.text()
        style = await client.get("/web/style.css")
        assert style.content_type == "text/css"
        for missing in ("/web/index.html", "/web/nope.js", "/web/..%2Fsetup.py"):
            assert (await client.get(missing)).status == 404, missing


def test_setup_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hotplex.context import PluginContext

    for name, value in NO_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude"))
    raw = {"provider": {"binary": str(write_wrapper(tmp_path / "bin"))}}
    settings = load_settings(None, text=yaml.safe_dump(raw), environ={}).settings
    ctx = PluginContext(settings=settings, plugins=make_plugin_manager(entry_points=False))
    lines = setup_lines(setup_report(ctx))
    assert lines[0] == "the claude-code agent cannot start yet:"
    assert lines[1].startswith("  credentials: no Anthropic credentials")
    assert lines[2] == f"    fix: {CREDENTIALS_FIX} (or run `node_modules/.bin/claude login`)"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    assert setup_lines(setup_report(ctx)) == [
        "the claude-code agent can start (provider, credentials: ok)"
    ]


def write_config(tmp_path: Path) -> Path:
    config = {
        "engine": {"data_dir": str(tmp_path / "data")},
        "provider": {"binary": str(write_wrapper(tmp_path / "bin"))},
        "server": {"port": 0},
    }
    path = tmp_path / "hotplex.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def wait_for_line(daemon: Daemon, text: str, timeout: float = 20.0) -> str:
    async with asyncio.timeout(timeout):
        while True:
            for line in daemon.log:
                if text in line:
                    return line
            await asyncio.sleep(0.05)


@pytest.mark.timeout(90)
async def test_serve_prints_the_url_and_what_is_missing(tmp_path: Path, page: Any) -> None:
    env = {**NO_CREDENTIALS, "CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}
    daemon = Daemon(write_config(tmp_path), env=env)
    await daemon.start()
    try:
        line = await wait_for_line(daemon, "in a browser for the web chat")
        assert line == f"hotplex: open {daemon.url}/ in a browser for the web chat\n"
        await wait_for_line(daemon, f"fix: {CREDENTIALS_FIX}")
        assert any("credentials: no Anthropic credentials" in x for x in daemon.log)
        # the page shows the same; on loopback without keys it needs none
        from playwright.async_api import expect

        await page.goto(daemon.url + "/")
        banner = page.locator("#setup-banner")
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text("The claude-code agent cannot start yet.")
        await expect(banner.locator("code")).to_have_text(
            f"{CREDENTIALS_FIX} (or run `node_modules/.bin/claude login`)"
        )
        await expect(page.locator("#conn")).to_have_attribute("data-state", "open")
        await expect(page.locator("#settings")).to_be_hidden()
    finally:
        assert await daemon.stop() == 0


@pytest.mark.timeout(90)
async def test_no_banner_when_the_agent_can_start(tmp_path: Path, page: Any) -> None:
    env = {"ANTHROPIC_API_KEY": "sk-test", "CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}
    daemon = Daemon(write_config(tmp_path), env=env)
    await daemon.start()
    try:
        await wait_for_line(daemon, "agent can start (provider, credentials: ok)")
        url = f"{daemon.url}/api/v1/setup"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            assert (await response.json())["ready"] is True
        await page.goto(daemon.url + "/")
        await page.wait_for_function("window.HotPlex.state.setup !== null")
        assert await page.locator("#setup-banner").is_hidden()
        assert not any("cannot start" in line for line in daemon.log)
    finally:
        assert await daemon.stop() == 0


async def test_setup_refuses_a_rebound_host(web_client: Callable[..., Any], tmp_path: Path) -> None:
    """With no API keys (loopback trust), a page whose DNS name points at 127.0.0.1 may not
    read the report (it names paths of the installation)."""
    binary = str(write_wrapper(tmp_path / "bin"))
    async with web_client(binary=binary, env=NO_CREDENTIALS) as client:
        response = await client.get("/api/v1/setup", headers={"Host": "attacker.example"})
        assert response.status == 403
