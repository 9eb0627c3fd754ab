"""Smoke test: the real pinned Claude Code CLI against the fake Anthropic API.

It proves the fake speaks well enough for the CLI, and that the stream-json protocol we code
against (user lines in, ``result`` per turn, ``can_use_tool`` answered with
``{"behavior": "allow", "updatedInput": ...}``) holds for the pinned version.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from hotplex.testing.fake_anthropic import FakeAnthropic
from hotplex.testing.real_cli import require_cli

TURN_TIMEOUT = 30.0

pytestmark = pytest.mark.real_cli


class ClaudeProcess:
    """A minimal stream-json driver: one user line in, lines out until ``result``."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.permission_requests: list[dict[str, Any]] = []

    async def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        await self.proc.stdin.drain()

    async def turn(self, text: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Send one user message; return its ``result`` line and every line before it."""
        content = [{"type": "text", "text": text}]
        await self.send({"type": "user", "message": {"role": "user", "content": content}})
        return await asyncio.wait_for(self._read_until_result(), TURN_TIMEOUT)

    async def _read_until_result(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        assert self.proc.stdout is not None
        lines: list[dict[str, Any]] = []
        while line := await self.proc.stdout.readline():
            message = json.loads(line)
            lines.append(message)
            if message.get("type") == "result":
                return message, lines
            if message.get("type") == "control_request":
                await self._answer(message)
        raise AssertionError(f"stdout closed before a result; saw {lines}")

    async def _answer(self, message: dict[str, Any]) -> None:
        request = message["request"]
        assert request["subtype"] == "can_use_tool", request
        self.permission_requests.append(request)
        allow = {"behavior": "allow", "updatedInput": request["input"]}
        response = {"subtype": "success", "request_id": message["request_id"], "response": allow}
        await self.send({"type": "control_response", "response": response})


def claude_env(api: FakeAnthropic, home: Path) -> dict[str, str]:
    return {
        "ANTHROPIC_BASE_URL": api.base_url,
        "ANTHROPIC_API_KEY": "sk-test",
        "CLAUDE_CONFIG_DIR": str(home / "claude"),
        "DISABLE_TELEMETRY": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }


async def spawn(binary: Path, session_id: str, cwd: Path, env: dict[str, str]) -> ClaudeProcess:
    proc = await asyncio.create_subprocess_exec(
        str(binary), "-p", "--input-format", "stream-json", "--output-format", "stream-json",
        "--verbose", "--include-partial-messages", "--permission-prompt-tool", "stdio",
        "--session-id", session_id,
        cwd=cwd, env=env, limit=16 * 1024 * 1024, start_new_session=True,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    return ClaudeProcess(proc)


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 10)


async def test_real_claude_turns_recall_and_tool(tmp_path: Path) -> None:
    binary = require_cli("claude")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    session_id = str(uuid.uuid4())
    started = time.monotonic()
    async with FakeAnthropic() as api:
        claude = await spawn(binary, session_id, workspace, claude_env(api, tmp_path))
        try:
            await check_conversation(claude, api, session_id, workspace)
            assert claude.proc.stdin is not None
            claude.proc.stdin.close()
            assert await asyncio.wait_for(claude.proc.wait(), 10) == 0
        finally:
            await stop(claude.proc)
    print(f"real Claude smoke test: {time.monotonic() - started:.2f} s")


async def check_conversation(
    claude: ClaudeProcess, api: FakeAnthropic, session_id: str, workspace: Path
) -> None:
    first, lines = await claude.turn("hello")
    assert first["is_error"] is False and first["result"] == "echo: hello"
    assert first["session_id"] == session_id
    assert first["usage"]["output_tokens"] > 0
    init = next(m for m in lines if m.get("subtype") == "init")
    assert init["cwd"] == str(workspace)
    assert any(m.get("type") == "stream_event" for m in lines)

    recall, _ = await claude.turn("RECALL")
    assert recall["result"] == "recall: hello"

    # A plain `echo hi` is read-only and runs without asking; writing a file asks.
    tool, lines = await claude.turn("BASH: echo hi > hi.txt && cat hi.txt")
    assert tool["is_error"] is False and tool["result"] == "tool said: hi"
    assert [r["tool_name"] for r in claude.permission_requests] == ["Bash"]
    assert (workspace / "hi.txt").read_text().strip() == "hi"
    assert any(m.get("type") == "user" and m.get("tool_use_result") for m in lines)

    requests = await api.wait_for_requests(4, timeout=5)
    assert all(r.session_id == session_id for r in requests)
    assert api.count_user_turns(session_id) == 3
