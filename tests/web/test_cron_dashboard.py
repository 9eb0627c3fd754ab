"""The dashboard's cron panel in headless Chromium: the jobs of the cron plugin, with their
next fire time and last runs; no panel where cron does not run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

if os.environ.get("CI") != "true":  # in CI a missing playwright fails the collection
    pytest.importorskip("playwright")

from playwright.async_api import expect
from web_kit import ADMIN_TOKEN, DaemonFactory, login, write_config

from hotplex.client import DaemonClient

pytestmark = pytest.mark.timeout(120)


async def test_the_dashboard_lists_cron_jobs_and_their_last_runs(
    start_daemon: DaemonFactory, page: Any, tmp_path: Path
) -> None:
    path = write_config(tmp_path)
    config = yaml.safe_load(path.read_text())
    config["plugins"] = {"cron": {"min_interval": "1s"}}
    path.write_text(yaml.safe_dump(config))
    daemon = await start_daemon(config=path)
    client = DaemonClient(daemon.url, ADMIN_TOKEN)
    job = {"name": "nightly", "schedule": "0 3 * * *", "timezone": "Asia/Tokyo", "prompt": "go"}
    client.request("POST", "/admin/v1/cron/jobs", job)
    client.request("POST", "/admin/v1/cron/jobs/nightly/run")
    await login(page, daemon)
    await page.click("#tab-dashboard")
    row = page.locator('#cron-table tr[data-job="nightly"]')
    await expect(row).to_contain_text("0 3 * * * (Asia/Tokyo)")
    await expect(row).to_contain_text("T03:00:00+09:00")
    await page.click("#refresh")
    ran = row.locator('.cron-run[data-status="ok"]')
    await expect(ran).to_contain_text("echo: go", timeout=20_000)


async def test_no_cron_panel_without_cron(start_daemon: DaemonFactory, page: Any) -> None:
    daemon = await start_daemon()
    await login(page, daemon)
    await page.click("#tab-dashboard")
    await expect(page.locator("#dash-status")).to_contain_text("updated")
    await expect(page.locator("#cron-panel")).to_be_hidden()
