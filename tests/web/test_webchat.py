"""The web chat in headless Chromium against a real daemon with the fake Claude CLI:
streaming, approvals, reload, reconnect, escaping, a phone-sized screen."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

if os.environ.get("CI") != "true":  # in CI a missing playwright fails the collection
    pytest.importorskip("playwright")

from playwright.async_api import expect
from web_kit import DaemonFactory, login, send_prompt

pytestmark = pytest.mark.timeout(120)

Shot = Callable[[Any, str], Awaitable[None]]


async def test_prompt_streams_token_by_token(
    start_daemon: DaemonFactory, page: Any, shot: Shot
) -> None:
    daemon = await start_daemon("--fake-slow", "0.25")
    await login(page, daemon)
    await send_prompt(page, "alpha bravo charlie delta echo foxtrot")
    live = page.locator(".turn .text.streaming")
    await expect(live).to_contain_text("echo: alpha")
    partial = await live.inner_text()
    await shot(page, "chat-streaming")
    assert "foxtrot" not in partial, f"the whole answer came at once: {partial!r}"
    turn = page.locator('.turn[data-status="ok"]')
    await expect(turn.locator(".text")).to_have_text("echo: alpha bravo charlie delta echo foxtrot")
    await expect(page.locator(".streaming")).to_have_count(0)
    await expect(turn.locator(".user")).to_have_text("alpha bravo charlie delta echo foxtrot")
    # tokens and cost of the turn, from its usage event
    await expect(turn.locator(".turn-foot")).to_contain_text(" out tokens · $0.0002")
    await expect(page.locator("#stop")).to_be_disabled()
