"""A message delivered through the router to the page's web address appears in that
conversation in the browser, live and after a reload (headless Chromium against HotPlex
served in the test's process, so the test holds the router)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

if os.environ.get("CI") != "true":  # in CI a missing playwright fails the collection
    pytest.importorskip("playwright")

from aiohttp import web
from playwright.async_api import expect
from web_kit import login, send_prompt, write_config

from hotplex.chat import DELIVERY
from hotplex.compose import compose, load_composition
from hotplex.gateway import build_app
from hotplex.runtime import Runtime

pytestmark = pytest.mark.timeout(120)


class Served:
    def __init__(self, url: str, runtime: Runtime) -> None:
        self.url = url
        self.runtime = runtime


@pytest.fixture
async def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Served]:
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude"))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-unused-by-the-fake-agent")
    composition = load_composition(write_config(tmp_path), environ=dict(os.environ))
    runtime = compose(composition.config.settings, composition.plugins)
    runner = web.AppRunner(build_app(runtime))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Served(f"http://127.0.0.1:{port}", runtime)
    finally:
        await runner.cleanup()


async def test_a_delivered_message_appears_in_the_conversation(served: Served, page: Any) -> None:
    await login(page, served)  # type: ignore[arg-type]
    await send_prompt(page, "hello")
    await expect(page.locator('.turn[data-status="ok"] .text')).to_have_text("echo: hello")
    client_id = await page.evaluate("window.HotPlex.state.current")
    address = f"web:tester/{client_id}"

    router = served.runtime.ctx.services.get(DELIVERY)
    ref = await router.send(address, "The **nightly** build <img src=x onerror=alert(1)> failed")
    assert ref.address == address
    delivered = page.locator("article.delivered")
    await expect(delivered).to_have_count(1)
    await expect(delivered.locator(".from")).to_have_text("from hotplex")
    await expect(delivered.locator(".text")).to_have_text(
        "The nightly build <img src=x onerror=alert(1)> failed"
    )
    await expect(delivered.locator(".text strong")).to_have_text("nightly")
    await expect(delivered.locator("img")).to_have_count(0)

    await page.reload()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "open")
    await expect(page.locator(".turn .text")).to_have_text("echo: hello")
    await expect(page.locator("article.delivered .text")).to_have_text(
        "The nightly build <img src=x onerror=alert(1)> failed"
    )
    # in order: after the turn it followed
    order = await page.evaluate(
        "[...document.querySelectorAll('#log > article')].map(a => a.className)"
    )
    assert order == ["turn", "delivered"], order


async def test_a_chat_command_is_answered_in_the_conversation(served: Served, page: Any) -> None:
    """The page's prompts take the dispatcher's path: ``/help`` is answered by HotPlex (a
    message in the conversation), the agent never sees it, and the page is not left
    waiting for a turn."""
    await login(page, served)  # type: ignore[arg-type]
    await send_prompt(page, "/help")
    answer = page.locator("article.delivered")
    await expect(answer.locator(".from")).to_have_text("from hotplex")
    await expect(answer.locator(".text")).to_contain_text("/status")
    await expect(page.locator(".turn.pending")).to_have_count(0)
    await expect(page.locator("#stop")).to_be_disabled()
    await expect(page.locator(".turn .assistant")).to_have_count(0)  # no turn ran
