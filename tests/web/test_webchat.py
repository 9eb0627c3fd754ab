"""The web chat in headless Chromium against a real daemon with the fake Claude CLI:
streaming, approvals, reload, reconnect, escaping, a phone-sized screen."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest

if os.environ.get("CI") != "true":  # in CI a missing playwright fails the collection
    pytest.importorskip("playwright")

from playwright.async_api import expect
from web_kit import KEY, DaemonFactory, Shot, login, send_prompt

pytestmark = pytest.mark.timeout(120)


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
    await page.wait_for_function("window.HotPlex.state.setup !== null")
    assert await page.locator("#setup-banner").is_hidden()  # the fake agent is a usable CLI


async def test_tool_call_is_approved_and_denied_with_buttons(
    start_daemon: DaemonFactory, page: Any, shot: Shot
) -> None:
    daemon = await start_daemon()
    await login(page, daemon)
    await send_prompt(page, "RUN: touch made.txt")
    card = page.locator(".perm").first
    await expect(card.locator(".question")).to_have_text("Allow Bash?")
    await expect(card.locator("pre")).to_contain_text('"command": "touch made.txt"')
    tool = page.locator("details.tool").first
    await expect(tool).to_have_attribute("data-state", "running")  # shown before approval
    await shot(page, "approval")
    await card.get_by_role("button", name="Allow", exact=True).click()
    await expect(card).to_have_attribute("data-decision", "allow")
    await expect(card.locator(".outcome")).to_have_text("✓ allowed by key:tester")
    await expect(tool).to_have_attribute("data-state", "ok")
    await expect(tool.locator("pre.output")).to_have_text("ran: touch made.txt")
    first = page.locator('.turn[data-status="ok"]').first
    await expect(first.locator(".text")).to_have_text("done: touch made.txt")
    # collapsible: closed, then opened by a click on its summary
    assert not await tool.evaluate("node => node.open")
    await tool.locator("summary").click()
    await expect(tool.locator("pre.output")).to_be_visible()

    await send_prompt(page, "RUN: rm -rf nothing")
    second = page.locator(".turn").nth(1)
    await second.get_by_role("button", name="Deny").click()
    await expect(second.locator(".perm")).to_have_attribute("data-decision", "deny")
    await expect(second.locator("details.tool")).to_have_attribute("data-state", "error")
    await expect(second).to_have_attribute("data-status", "ok")


async def test_reload_shows_the_conversation_and_keeps_the_key(
    start_daemon: DaemonFactory, page: Any
) -> None:
    daemon = await start_daemon()
    await login(page, daemon)
    await send_prompt(page, "hello **there**")
    await expect(page.locator('.turn[data-status="ok"] .text')).to_have_text("echo: hello there")
    await send_prompt(page, "RUN: touch kept.txt")
    await page.get_by_role("button", name="Allow for this session").click()
    await expect(page.locator('.turn[data-status="ok"]')).to_have_count(2)

    await page.reload()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "open")
    await expect(page.locator("#settings")).to_be_hidden()  # the key was entered once
    turns = page.locator(".turn")
    await expect(turns).to_have_count(2)
    await expect(turns.nth(0).locator(".user")).to_have_text("hello **there**")
    await expect(turns.nth(0).locator(".text strong")).to_have_text("there")
    await expect(turns.nth(0).locator(".turn-foot")).to_contain_text("tokens")
    await expect(turns.nth(1).locator(".user")).to_have_text("RUN: touch kept.txt")
    await expect(turns.nth(1).locator(".perm .outcome")).to_have_text(
        "✓ allowed for this session by key:tester"
    )
    await expect(turns.nth(1).locator("details.tool pre.output")).to_have_text(
        "ran: touch kept.txt"
    )
    # the same conversation goes on after the reload
    await send_prompt(page, "what did I say first")
    await expect(turns.nth(2).locator(".text")).to_have_text("first: hello there")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_reconnects_and_resubscribes_after_a_restart(
    start_daemon: DaemonFactory, page: Any, tmp_path: Any
) -> None:
    port = free_port()
    daemon = await start_daemon(port=port)
    await login(page, daemon)
    await send_prompt(page, "before the restart")
    await expect(page.locator('.turn[data-status="ok"]')).to_have_count(1)
    session_id = await page.evaluate("window.HotPlex.state.current")

    assert await daemon.stop() == 0
    await expect(page.locator("#conn")).to_have_attribute("data-state", "closed")
    await expect(page.locator("#conn")).to_contain_text("retrying in")
    await expect(page.locator("#send")).to_be_disabled()
    again = await start_daemon(config=tmp_path / "hotplex.yaml")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "open")
    await expect(page.locator(".turn .text")).to_have_text(["echo: before the restart"])

    # a turn started by another client reaches the page only through its subscription
    async with again.client(KEY) as other:
        await other.execute(session_id, "from another client")
    other_turn = page.locator(".turn").nth(1)
    await expect(other_turn.locator(".user")).to_have_text("(prompt sent from another client)")
    await expect(other_turn.locator(".text")).to_have_text("echo: from another client")
    await send_prompt(page, "after the restart")
    await expect(page.locator(".turn").nth(2).locator(".text")).to_have_text(
        "echo: after the restart"
    )


PAYLOAD = (
    '<script>window.__pwned = 1</script> <img src=x onerror="window.__pwned = 2"> '
    "[x](javascript:window.__pwned=3) **bold** `<b>code</b>`"
)


async def test_agent_output_renders_as_text(
    start_daemon: DaemonFactory, page: Any, shot: Shot
) -> None:
    daemon = await start_daemon()
    await login(page, daemon)
    await send_prompt(page, PAYLOAD)
    text = page.locator('.turn[data-status="ok"] .text')
    await expect(text).to_contain_text("<script>window.__pwned = 1</script>")
    await expect(text).to_contain_text('<img src=x onerror="window.__pwned = 2">')
    await expect(text.locator("strong")).to_have_text("bold")
    await expect(text.locator("code")).to_have_text("<b>code</b>")
    assert await page.locator(".turn").locator("script, img, a, b, iframe, svg").count() == 0
    assert await page.evaluate("window.__pwned") is None
    await shot(page, "escaped")
    # the prompt bubble, too, is text
    await expect(page.locator(".user")).to_have_text(PAYLOAD)


HOSTILE = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "```\n</code></pre><img src=x onerror=alert(1)>\n```",
    "```html onload=alert(1)\n<svg onload=alert(1)>",
    '[a](https://example.com/"onmouseover="alert(1))',
    "[a](javascript:alert(1)) [b](data:text/html,x) [c]( javascript:alert(1))",
    "**<i onclick=alert(1)>x</i>** *<u>y</u>* `<s>z</s>`",
    "# <h1>head</h1>\n- <li>item</li>\n> <blockquote>q</blockquote>\n1. <ol>",
    "&lt;script&gt; &amp; &#x3C;img&#x3E; \"quotes\" 'single'",
    "see [the docs](https://example.com/a?b=1&c=2) and *this*",
]


async def test_markdown_renderer_escapes_first(start_daemon: DaemonFactory, page: Any) -> None:
    daemon = await start_daemon()
    await page.goto(daemon.url + "/")
    found = await page.evaluate(
        """(samples) => samples.map((source) => {
            const box = document.createElement("div");
            box.innerHTML = window.HotPlex.renderMarkdown(source);
            const tags = [...box.querySelectorAll("*")].map((n) => n.tagName.toLowerCase());
            const attrs = [...box.querySelectorAll("*")].flatMap(
                (n) => [...n.attributes].map((a) => a.name + "=" + a.value));
            return {tags, attrs, text: box.textContent};
        })""",
        HOSTILE,
    )
    allowed = {"p", "br", "pre", "code", "strong", "em", "a", "h3", "ul", "ol", "li", "blockquote"}
    for source, result in zip(HOSTILE, found, strict=True):
        assert set(result["tags"]) <= allowed, (source, result)
        for attr in result["attrs"]:
            name, _, value = attr.partition("=")
            assert name in {"class", "data-lang", "href", "target", "rel"}, (source, attr)
            if name == "href":
                assert value.startswith("https://") and '"' not in value, (source, attr)
    # every character of the source is still there as text (markup aside)
    assert found[0]["text"] == "<script>alert(1)</script>"
    assert found[2]["text"] == "</code></pre><img src=x onerror=alert(1)>"
    assert found[8]["text"] == HOSTILE[8]
    # what the renderer is for still works
    assert found[9]["tags"] == ["p", "a", "em"], found[9]
    assert "href=https://example.com/a?b=1&c=2" in found[9]["attrs"]


async def test_phone_sized_screen(browser: Any, start_daemon: DaemonFactory, shot: Shot) -> None:
    daemon = await start_daemon()
    context = await browser.new_context(
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        color_scheme="dark",
    )
    context.set_default_timeout(20_000)
    page = await context.new_page()
    try:
        await login(page, daemon)
        await send_prompt(page, "RUN: ls -la")
        await expect(page.locator(".perm button").first).to_be_visible()
        await shot(page, "phone-approval")
        await page.locator(".perm").get_by_role("button", name="Allow", exact=True).click()
        await expect(page.locator(".turn")).to_have_attribute("data-status", "ok")
        for selector in ("#prompt", "#send", "#conn", ".turn .text"):
            box = await page.locator(selector).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, selector
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways: {width}px"
    finally:
        await context.close()


async def test_a_waf_asked_prompt_is_approved_with_buttons(
    start_daemon: DaemonFactory, page: Any, shot: Shot
) -> None:
    daemon = await start_daemon()
    await login(page, daemon)
    asked = "append a line: echo hi >> ~/.bashrc"
    await send_prompt(page, asked)
    card = page.locator('.perm[data-kind="prompt"]')
    await expect(card.locator(".question")).to_have_text("Send this prompt to the agent?")
    await expect(card.locator("pre")).to_have_text(asked)
    await expect(card.locator(".meta")).to_contain_text("persist.shell_rc")
    await expect(card.get_by_role("button", name="Allow for this session")).to_have_count(0)
    await shot(page, "prompt-approval")
    # while it waits, the page is not frozen: another session's prompt is answered
    await page.click("#new-session")
    await send_prompt(page, "meanwhile")
    await expect(page.locator('.turn[data-status="ok"] .text')).to_have_text("echo: meanwhile")
    await page.locator("#session-list button").nth(1).click()  # back to the asked prompt
    card = page.locator('.perm[data-kind="prompt"]')
    await card.get_by_role("button", name="Allow", exact=True).click()
    await expect(card).to_have_attribute("data-decision", "allow")
    await expect(card.locator(".outcome")).to_have_text("✓ allowed by key:tester")
    turn = page.locator('.turn[data-status="ok"]')
    await expect(turn.locator(".text")).to_have_text(f"echo: {asked}")
    await expect(turn.locator(".user")).to_have_text(asked)

    await send_prompt(page, "run: echo more >> ~/.zshrc")
    second = page.locator(".turn").nth(1)
    await second.get_by_role("button", name="Deny").click()
    await expect(second).to_have_attribute("data-status", "refused")
    await expect(second.locator(".error")).to_contain_text("refused: Blocked by WAF rule")
    await expect(second.locator(".perm .outcome")).to_have_text("✗ denied by key:tester")
    await expect(page.locator("#stop")).to_be_disabled()
