"""Two ``hotplex serve`` daemons on loopback, each the other's relay peer: a chat command
on A and ``hotplex relay send`` ask B, whose answer streams back; a peer that is down is a
clear error within the timeout; B killed mid-answer leaves A's message marked incomplete."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable
from pathlib import Path

import pytest
from relay_kit import (
    Bot,
    admin,
    daemon_env,
    free_port,
    running,
    shown,
    until,
    web_messages,
    write_config,
)

from hotplex.testing.file_chat import post

ADDRESS = "filechat:w/D1"
WEB = "web:tester/r1"
WORDS = " ".join(f"w{i}" for i in range(12))


def answer_in(a: Bot, start: str) -> dict[str, str]:
    """A's messages in the conversation whose text starts with ``start``: id -> last text."""
    return {i: t for i, t in shown(a.outbox(), ADDRESS).items() if t.startswith(start)}


async def _has(texts: Awaitable[list[str]], text: str) -> bool:
    return text in await texts


async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A peer that takes the request and never answers."""
    try:
        await reader.read()  # until the asker gives up
    finally:
        writer.close()


def writes_of(a: Bot, message_id: str) -> list[str]:
    return [c["text"] for c in a.outbox() if c["id"] == message_id and c["method"] != "delete"]


@pytest.mark.timeout(120)
async def test_a_chat_command_and_the_cli_get_bs_answer_streamed_back(tmp_path: Path) -> None:
    a, b = Bot("a", tmp_path / "a"), Bot("b", tmp_path / "b")
    config_a = write_config(a, {"b": b.relay_url})
    config_b = write_config(b, {"a": a.relay_url}, agent=("--fake-slow", "0.1"))
    async with running(b, config_b), running(a, config_a):
        # the asking conversation is bound to a web chat session: b's answer shows there too
        await admin(a, "POST", "/admin/v1/relay/bindings", {"a": ADDRESS, "b": WEB})
        post(a.chat, id="1", channel="D1", user="U1", text=f"/relay b hello {WORDS}", direct=True)
        final = f"**b:** echo: hello {WORDS}"
        found = await until(lambda: answer_in(a, final), 30, "b's answer in A's conversation")
        mirrored = f"**b** in {ADDRESS}:\necho: hello {WORDS}"
        await until(
            lambda: _has(web_messages(a, WEB), mirrored), 10, "b's answer in the bound session"
        )
        (message_id,) = found
        writes = writes_of(a, message_id)
        assert writes[-1] == final
        assert len(writes) > 2 and writes[0] != final, f"not streamed: {writes}"
        assert any(t.startswith("Asked b") for t in shown(a.outbox(), ADDRESS).values())

        # the same asking conversation reaches the same hot session on B
        post(
            a.chat,
            id="2",
            channel="D1",
            user="U1",
            text="/relay b what did I say first",
            direct=True,
        )
        await until(
            lambda: answer_in(a, f"**b:** first: hello {WORDS}"), 30, "the same session on b"
        )
        sessions = (await admin(b, "GET", "/admin/v1/sessions"))["sessions"]
        assert len(sessions) == 1, sessions
        assert sessions[0]["address"].startswith("relay:a/")

        # b's policy for a is deny: a tool that needs approval is refused, and A is told
        post(a.chat, id="3", channel="D1", user="U1", text="/relay b RUN: ls -la", direct=True)
        refused = await until(
            lambda: [t for t in shown(a.outbox(), ADDRESS).values() if "refused or failed" in t],
            30,
            "the refused tool to be reported",
        )
        assert "⚠️ b refused or failed: Bash: " in refused[0]
        assert "unattended (policy: deny)" in refused[0]

        # the CLI asks b directly and streams the answer to the terminal
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hotplex", "--config", str(config_a),
            "relay", "send", "b", f"from the terminal {WORDS}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=daemon_env(a.root),
        )  # fmt: skip
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            first = await proc.stdout.read(8)
            assert proc.returncode is None, "nothing came before the command ended"
            rest = await proc.stdout.read()
            code = await proc.wait()
        out = (first + rest).decode()
        assert code == 0, out
        assert f"**b:** echo: from the terminal {WORDS}" in out


@pytest.mark.timeout(120)
async def test_a_peer_down_fails_fast_and_a_killed_peer_leaves_the_answer_incomplete(
    tmp_path: Path,
) -> None:
    a, b = Bot("a", tmp_path / "a"), Bot("b", tmp_path / "b")
    down = f"http://127.0.0.1:{free_port()}/relay/v1"  # nobody listens there
    stuck = await asyncio.start_server(hold, "127.0.0.1", 0)  # accepts, never answers
    slow = f"http://127.0.0.1:{stuck.sockets[0].getsockname()[1]}/relay/v1"
    config_a = write_config(a, {"b": b.relay_url, "c": down, "s": slow})
    long = " ".join(f"x{i}" for i in range(200))
    config_b = write_config(b, {"a": a.relay_url}, agent=("--fake-slow", "0.1"))
    async with stuck, running(b, config_b) as daemon_b, running(a, config_a):
        started = time.monotonic()
        post(a.chat, id="1", channel="D1", user="U1", text="/relay c are you there", direct=True)
        error = await until(lambda: answer_in(a, "⚠️ /relay c: c at "), 10, "the error")
        assert "unreachable, cannot connect" in next(iter(error.values()))
        assert time.monotonic() - started < 2 + 3  # connect_timeout, with room for the chat
        peers = await admin(a, "GET", "/admin/v1/relay/peers")
        (c,) = [p for p in peers["peers"] if p["name"] == "c"]
        assert "cannot connect" in c["breaker"]["last_error"]

        started = time.monotonic()
        post(a.chat, id="9", channel="D1", user="U1", text="/relay s are you there", direct=True)
        await until(lambda: answer_in(a, "⚠️ /relay s: s at "), 15, "the slow peer's error")
        assert "no answer in time" in next(iter(answer_in(a, "⚠️ /relay s").values()))
        assert time.monotonic() - started < 2 + 5 + 3  # connect + idle timeouts, and room

        post(a.chat, id="2", channel="D1", user="U1", text=f"/relay b {long}", direct=True)
        await until(lambda: answer_in(a, "**b:** echo: x0 x1"), 30, "b's answer to start")
        assert await daemon_b.kill() != 0
        done = await until(
            lambda: (
                answer_in(a, "⚠️ INCOMPLETE answer from b")
                or [t for t in answer_in(a, "**b:** echo: x0").values() if "INCOMPLETE" in t]
            ),
            20,
            "the answer to be marked incomplete",
        )
        text = "\n".join(done.values()) if isinstance(done, dict) else "\n".join(done)
        assert "INCOMPLETE answer from b" in text
        assert long not in "\n".join(shown(a.outbox(), ADDRESS).values())  # never whole
