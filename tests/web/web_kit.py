"""Helpers of the browser tests: the daemon's config, keys, and page steps."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from hotplex.testing.daemon import Daemon
from hotplex.testing.fake_agent import write_wrapper

KEY = "k-web-0123456789"
ADMIN_TOKEN = "admin-web-0123456789"
#: Every Playwright wait (ms); a turn of the fake agent takes well under a second.
WAIT_MS = 20_000

DaemonFactory = Callable[..., Awaitable[Daemon]]
#: The ``shot`` fixture: ``await shot(page, "name")`` saves a screenshot when asked to.
Shot = Callable[[Any, str], Awaitable[None]]


def write_config(
    tmp_path: Path,
    *switches: str,
    binary: Path | None = None,
    port: int = 0,
    keys: bool = True,
) -> Path:
    server: dict[str, Any] = {"port": port, "rate_limit": {"enabled": False}}
    if keys:
        server.update(api_keys=[{"name": "tester", "key": KEY}], admin_token=ADMIN_TOKEN)
    config = {
        "engine": {"data_dir": str(tmp_path / "data"), "kill_grace": "1s"},
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'data' / 'hotplex.db'}"},
        "provider": {"binary": str(binary or write_wrapper(tmp_path / "bin", *switches))},
        "server": server,
    }
    path = tmp_path / "hotplex.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def login(page: Any, daemon: Daemon, *, key: str = KEY, admin: str = ADMIN_TOKEN) -> None:
    """Open the page, enter the API key and admin token in the form it shows, and wait
    for the connection."""
    from playwright.async_api import expect

    await page.goto(daemon.url + "/")
    await expect(page.locator("#settings")).to_be_visible()
    await page.fill("#api-key", key)
    await page.fill("#admin-token", admin)
    await page.click("#save-settings")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "open")


async def send_prompt(page: Any, text: str) -> None:
    await page.fill("#prompt", text)
    await page.press("#prompt", "Enter")
