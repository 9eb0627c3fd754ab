"""Fixtures of the browser tests: headless Debian Chromium driven by Playwright, against a
real ``hotplex serve`` whose agent is the fake Claude CLI (or the real one).

Chromium is never downloaded: Playwright launches ``/usr/bin/chromium``. Without it (or
without the ``playwright`` package) the tests skip, and fail under ``CI=true``. With
``HOTPLEX_SCREENSHOTS=DIR`` the tests save screenshots into DIR.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from web_kit import WAIT_MS, DaemonFactory, write_config

from hotplex.testing.daemon import Daemon

CHROMIUM = Path("/usr/bin/chromium")


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is missing (make setup installs Debian's chromium)")
    from playwright.async_api import expect

    expect.set_options(timeout=WAIT_MS)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def page_errors() -> list[str]:
    return []


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
async def page(
    browser: Any, page_errors: list[str], request: pytest.FixtureRequest
) -> AsyncIterator[Any]:
    """A fresh browser context (empty localStorage) and page; an uncaught script error
    fails the test. A failed test prints what the page showed."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(WAIT_MS)
    opened = await context.new_page()
    opened.on("pageerror", lambda error: page_errors.append(str(error)))
    opened.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    opened.on("dialog", lambda dialog: dialog.accept())
    console: list[str] = []
    try:
        yield opened
    finally:
        if request.node.stash.get(FAILED, False):
            shown = await opened.locator("body").inner_text(timeout=2_000)
            print(f"--- the page showed:\n{shown}\n--- its console:\n" + "\n".join(console))
        await context.close()
    assert not page_errors, f"script errors on the page: {page_errors}"


@pytest.fixture
async def start_daemon(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[DaemonFactory]:
    """``await start_daemon(*fake_switches, env=..., port=..., keys=...)``: a running
    daemon (stopped at the end). By default it has credentials, so no setup banner."""
    running: list[Daemon] = []

    async def start(
        *switches: str,
        env: dict[str, str] | None = None,
        config: Path | None = None,
        **options: Any,
    ) -> Daemon:
        path = config or write_config(tmp_path, *switches, **options)
        daemon = Daemon(
            path,
            env={
                "CLAUDE_CONFIG_DIR": str(tmp_path / "claude"),
                "ANTHROPIC_API_KEY": "sk-unused-by-the-fake-agent",
                **(env or {}),
            },
        )
        await daemon.start()
        running.append(daemon)
        return daemon

    yield start
    if request.node.stash.get(FAILED, False):
        for daemon in running:
            print(f"--- log of the daemon at {daemon.url}:\n" + "".join(daemon.log[-60:]))
    for daemon in running:
        if daemon.proc is not None and daemon.proc.returncode is None:
            assert await daemon.stop() == 0, "".join(daemon.log[-30:])


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[Any, str], Awaitable[None]]:
    """``await shot(page, "name")`` saves ``$HOTPLEX_SCREENSHOTS/name.png`` when set."""
    folder = os.environ.get("HOTPLEX_SCREENSHOTS")

    async def save(page: Any, name: str) -> None:
        if not folder:
            return
        Path(folder).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(folder) / f"{name}.png"))

    return save
