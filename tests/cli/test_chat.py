"""``hotplex chat`` against a live ``hotplex serve`` (the fake Claude CLI as the agent): a
scripted conversation through ChatSession's I/O seam, and the real command in a pty."""

from __future__ import annotations

import asyncio
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from hotplex.address import session_id_for
from hotplex.cli.chat import ChatSession, ws_url
from hotplex.config.models import DEFAULT_NAMESPACE
from hotplex.testing.daemon import Daemon
from hotplex.testing.fake_agent import write_wrapper

KEY = "k-chat-0123456789"


def write_config(tmp_path: Path) -> Path:
    config = {
        "engine": {"data_dir": str(tmp_path / "data"), "kill_grace": "1s"},
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'data' / 'hotplex.db'}"},
        "provider": {"binary": str(write_wrapper(tmp_path / "bin"))},
        "server": {
            "port": 0,
            "api_keys": [{"name": "tester", "key": KEY}],
            "admin_token": "admin-chat-0123456789",
            "rate_limit": {"enabled": False},
        },
    }
    path = tmp_path / "hotplex.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class Script:
    """Input lines fed one per read (None at the end), and every written text."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = list(lines)
        self.out: list[str] = []
        self.reads = 0

    async def read(self) -> str | None:
        self.reads += 1
        await asyncio.sleep(0)
        if not self.lines:
            return None
        line = self.lines.pop(0)
        self.out.append(line + "\n")  # a terminal echoes what was typed
        return line

    def write(self, text: str) -> None:
        self.out.append(text)

    @property
    def text(self) -> str:
        return "".join(self.out)


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    running = Daemon(write_config(tmp_path), env={"CLAUDE_CONFIG_DIR": str(tmp_path / "claude")})
    await running.start()
    try:
        yield running
    finally:
        assert await running.stop() == 0


def test_ws_url() -> None:
    assert ws_url("http://127.0.0.1:8080/") == "ws://127.0.0.1:8080/ws/v1/agent"
    assert ws_url("https://h.example") == "wss://h.example/ws/v1/agent"


@pytest.mark.timeout(120)
async def test_scripted_chat_streams_asks_and_exits(daemon: Daemon, tmp_path: Path) -> None:
    script = Script(["hello", "", "RUN: touch made.txt", "y", "RUN: rm -rf nothing", "n"])
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(ws_url(daemon.url), headers={"Authorization": f"Bearer {KEY}"})
        try:
            session = ChatSession(script.read, script.write, ws, "scripted")
            code = await asyncio.wait_for(session.run(), 60)
        finally:
            await ws.close()
    out = script.text
    assert code == 0, out
    assert out.startswith("you> hello\necho: hello\nyou> \nyou> RUN: touch made.txt\n"), out
    # streamed word by word: "echo: " and "hello" arrive as separate writes
    assert "echo: " in script.out and "hello" in script.out
    assert (
        "  ⚙ Bash: touch made.txt\n"
        "Allow Bash: touch made.txt? [y/N/a(lways)] y\n"
        "  ✓ ran: touch made.txt\n"
        "done: touch made.txt\n"
    ) in out
    denied = out.split("Allow Bash: rm -rf nothing? [y/N/a(lways)] n\n", 1)[1]
    assert denied.startswith("  ✗ ") and "denied" in denied.splitlines()[0], out
    assert out.endswith("you> \n"), out  # EOF at the prompt leaves cleanly
    made = list((tmp_path / "data").rglob("made.txt"))
    address = session_id_for("web:tester/scripted", DEFAULT_NAMESPACE)
    assert made, f"made.txt not created for {address}"


@pytest.mark.timeout(120)
async def test_a_waf_asked_prompt_is_asked_about_in_the_chat(daemon: Daemon) -> None:
    asked = "append a line: echo hi >> ~/.bashrc"
    script = Script([asked, "y", "run: echo more >> ~/.zshrc", "n"])
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(ws_url(daemon.url), headers={"Authorization": f"Bearer {KEY}"})
        try:
            code = await asyncio.wait_for(ChatSession(script.read, script.write, ws, "w").run(), 60)
        finally:
            await ws.close()
    out = script.text
    assert code == 0, out
    question = (
        "The WAF asks (persist.shell_rc: Changing a shell start-up file (~/.bashrc, ~/.zshrc, "
        "/etc/profile ...).): send it? [y/N] "
    )
    assert f"{question}y\necho: {asked}\nyou> " in out, out
    refused = "  ✗ refused: Blocked by WAF rule persist.shell_rc: "
    assert f"{question}n\n{refused}" in out
    assert "(approval was not given: denied by key:tester)" in out


@pytest.mark.timeout(60)
async def test_quit_command_and_bad_key(daemon: Daemon) -> None:
    script = Script(["/quit", "hello"])
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(ws_url(daemon.url), headers={"Authorization": f"Bearer {KEY}"})
        try:
            assert await ChatSession(script.read, script.write, ws, "q").run() == 0
        finally:
            await ws.close()
    assert script.text == "you> /quit\n" and script.lines == ["hello"]

    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "hotplex", "chat", "--url", daemon.url, "--token", "wrong"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "HOTPLEX_DISABLE_PLUGINS": ""},
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"hotplex: HotPlex at {daemon.url} refused the connection (401): pass an API key "
        "(server.api_keys) or the admin token with --token or HOTPLEX_TOKEN"
    ]


def test_cannot_connect_is_one_line() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    result = subprocess.run(
        [sys.executable, "-m", "hotplex", "chat", "--url", url, "--token", "x"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"hotplex: cannot reach HotPlex at {url}: ")


def _read_until(fd: int, needle: bytes, seen: bytearray, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {needle!r} within {timeout}s; saw {bytes(seen)!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            if not chunk:
                raise AssertionError(f"terminal closed before {needle!r}; saw {bytes(seen)!r}")
            seen.extend(chunk)


def _pty_chat(url: str) -> tuple[int, bytes]:
    pid, fd = pty.fork()
    if pid == 0:  # the child: the real command on the terminal
        try:
            os.execvpe(
                sys.executable,
                [sys.executable, "-m", "hotplex", "chat", "--url", url, "--token", KEY],
                {**os.environ, "HOTPLEX_DISABLE_PLUGINS": ""},
            )
        finally:
            os._exit(127)
    seen = bytearray()
    try:
        _read_until(fd, b"you> ", seen, 30)
        os.write(fd, b"hello\n")
        _read_until(fd, b"echo: hello", seen, 30)
        _read_until(fd, b"you> ", seen, 30)
        os.write(fd, b"\x04")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                with_rest = select.select([fd], [], [], 0)[0]
                if with_rest:
                    try:
                        seen.extend(os.read(fd, 4096))
                    except OSError:
                        pass
                return os.waitstatus_to_exitcode(status), bytes(seen)
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    seen.extend(os.read(fd, 4096))
                except OSError:
                    pass
        raise AssertionError(f"chat did not exit after EOF; saw {bytes(seen)!r}")
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


@pytest.mark.timeout(120)
async def test_real_command_in_a_pty(daemon: Daemon) -> None:
    code, seen = await asyncio.to_thread(_pty_chat, daemon.url)
    assert code == 0, seen
    assert b"echo: hello" in seen
