"""The dashboard tab in headless Chromium: live sessions, WAF verdicts and approvals from
the admin API, and killing a session."""

from __future__ import annotations

import os
from typing import Any

import aiohttp
import pytest

if os.environ.get("CI") != "true":  # in CI a missing playwright fails the collection
    pytest.importorskip("playwright")

from playwright.async_api import expect
from web_kit import ADMIN_TOKEN, DaemonFactory, Shot, login, send_prompt

pytestmark = pytest.mark.timeout(120)


async def test_dashboard_lists_sessions_and_audit_and_kills(
    start_daemon: DaemonFactory, page: Any, shot: Shot
) -> None:
    daemon = await start_daemon()
    await login(page, daemon)
    await send_prompt(page, "RUN: touch audited.txt")
    await page.locator(".perm").get_by_role("button", name="Allow", exact=True).click()
    await expect(page.locator('.turn[data-status="ok"]')).to_have_count(1)
    await send_prompt(page, "please RUN: rm -rf /")  # the WAF refuses the prompt
    await expect(page.locator('.turn[data-status="refused"] .error')).to_contain_text("refused: ")
    session_id = await page.evaluate("window.HotPlex.state.current")

    await page.click("#tab-dashboard")
    row = page.locator(f'#sessions-table tr[data-address="web:tester/{session_id}"]')
    await expect(row.locator("td.state")).to_have_text("idle")
    await expect(row).to_contain_text("$0.0002")
    decided = page.locator('#audit-table tr[data-type="approval.decided"]')
    await expect(decided).to_contain_text("allow Bash (once)")
    await expect(decided).to_contain_text("tester")
    requested = page.locator('#audit-table tr[data-type="approval.requested"]')
    await expect(requested).to_contain_text("Bash: touch audited.txt")
    verdict = page.locator('#audit-table tr[data-type="waf.verdict"]').first
    await expect(verdict).to_contain_text("block delete.root")
    await expect(page.locator("#stats")).to_contain_text("turns")
    await shot(page, "dashboard")

    await row.get_by_role("button", name="Kill").click()  # the confirm() is accepted
    await expect(row.locator("td.state")).to_have_text("stopped")
    killed = page.locator('#audit-table tr[data-type="session.killed"]')
    await expect(killed).to_contain_text(f"web:tester/{session_id}")
    await expect(killed).to_contain_text("admin")
    engine_id = await row.get_attribute("data-session")
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    url = f"{daemon.url}/admin/v1/sessions/{engine_id}"
    async with aiohttp.ClientSession(headers=headers) as http, http.get(url) as response:
        assert (await response.json())["state"] == "stopped"
    # the chat goes on: the next prompt resumes the conversation
    await page.click("#tab-chat")
    await send_prompt(page, "what did I say first")
    await expect(page.locator('.turn[data-status="ok"] .text').last).to_have_text(
        "first: RUN: touch audited.txt"
    )


async def test_dashboard_asks_for_the_admin_token(start_daemon: DaemonFactory, page: Any) -> None:
    daemon = await start_daemon()
    await login(page, daemon, admin="")
    await page.click("#tab-dashboard")
    await expect(page.locator("#dash-status")).to_have_text(
        "the admin API refused: enter the admin token (Keys)"
    )
    await page.click("#open-settings")
    await page.fill("#admin-token", ADMIN_TOKEN)
    await page.click("#save-settings")
    await expect(page.locator("#dash-status")).to_contain_text("updated")
    await expect(page.locator("#sessions-table tbody")).to_have_text("No sessions yet.")
