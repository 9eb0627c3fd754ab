"""One full turn through the page with the real pinned Claude Code CLI, pointed at the fake
Anthropic API: the prompt, a Bash tool call approved with the button, the tool's output, the
answer, and the turn's tokens and cost."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

if os.environ.get("CI") != "true":  # in CI a missing playwright fails the collection
    pytest.importorskip("playwright")

from playwright.async_api import expect
from web_kit import DaemonFactory, login, send_prompt

pytestmark = [pytest.mark.real_cli, pytest.mark.timeout(180)]

#: the real CLI starts node and makes a few API calls per turn
TURN_MS = 60_000


async def test_a_full_turn_with_the_real_claude_code(
    claude_binary: Path,
    fake_api: Any,
    start_daemon: DaemonFactory,
    page: Any,
    shot: Callable[[Any, str], Awaitable[None]],
    tmp_path: Path,
) -> None:
    daemon = await start_daemon(
        binary=claude_binary,
        env={"ANTHROPIC_BASE_URL": fake_api.base_url, "ANTHROPIC_API_KEY": "sk-test"},
    )
    await login(page, daemon)
    await send_prompt(page, "BASH: touch made.txt && echo from-the-page")
    card = page.locator(".perm")
    await expect(card.locator(".question")).to_have_text("Allow Bash?", timeout=TURN_MS)
    await expect(card.locator("pre")).to_contain_text("touch made.txt && echo from-the-page")
    await shot(page, "real-cli-approval")
    await card.get_by_role("button", name="Allow", exact=True).click()
    turn = page.locator('.turn[data-status="ok"]')
    await expect(turn.locator("details.tool pre.output")).to_have_text(
        "from-the-page", timeout=TURN_MS
    )
    await expect(turn.locator(".text").last).to_have_text("tool said: from-the-page")
    await expect(turn.locator(".turn-foot")).to_contain_text(" out tokens · $")
    await shot(page, "real-cli-turn")
    assert fake_api.requests, "the CLI never called the fake API"
    assert list((tmp_path / "data").rglob("made.txt")), "the approved command did not run"
