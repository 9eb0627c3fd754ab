"""A binding between a file-chat conversation and a web chat session, made with
``hotplex relay bind`` on a running daemon: a person's message on either side appears on
the other with who wrote it, and the agent's answer shows in both; the streamed drafts
(edits) are not mirrored."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from relay_kit import KEY, TOKEN, Bot, daemon_env, running, shown, until, web_messages, write_config

from hotplex.testing.file_chat import post

CHAT = "filechat:w/D1"
WEB = "web:tester/s1"


async def cli(bot: Bot, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hotplex", "--config", str(bot.root / "hotplex.yaml"),
        "relay", *args, "--url", bot.url, "--token", TOKEN,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env=daemon_env(bot.root),
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, out.decode()
    return out.decode()


@pytest.mark.timeout(120)
async def test_a_binding_mirrors_both_ways_between_file_chat_and_the_web_chat(
    tmp_path: Path,
) -> None:
    a = Bot("a", tmp_path / "a")
    async with running(a, write_config(a, {})) as daemon:
        assert "bound filechat:w/D1 <-> web:tester/s1" in await cli(a, "bind", CHAT, WEB)
        listed = await cli(a, "list")
        assert "bound filechat:w/D1 <-> web:tester/s1" in listed and "this instance: a" in listed

        # file chat -> web: the person's message and the agent's answer
        post(a.chat, id="1", channel="D1", user="U1", text="hello from the file chat", direct=True)
        expected = [
            f"**filechat:U1** in {CHAT}:\nhello from the file chat",
            f"**agent** in {CHAT}:\necho: hello from the file chat",
        ]

        async def mirrored() -> list[str]:
            found = await web_messages(a, WEB)
            return found if len(found) >= 2 else []

        assert await until(mirrored, 20, "the file chat mirrored into the web chat") == expected

        # web -> file chat
        async with daemon.client(KEY) as web:
            frames: list[dict[str, Any]] = await web.execute("s1", "hello from the web")
        assert any(f.get("data", {}).get("text") == "echo: hello from the web" for f in frames)
        wanted = {
            f"**key:tester** in {WEB}:\nhello from the web",
            f"**agent** in {WEB}:\necho: hello from the web",
        }
        await until(lambda: wanted <= set(shown(a.outbox(), CHAT).values()), 20, "the web mirrored")
        # each side's message and answer once on the other side, no drafts, no echo back
        texts = list(shown(a.outbox(), CHAT).values())
        assert sorted(t for t in texts if t.startswith("**")) == sorted(wanted)
        assert len(await web_messages(a, WEB)) == 2

        assert "unbound" in await cli(a, "unbind", WEB, CHAT)
        assert "no bindings" in await cli(a, "list")
