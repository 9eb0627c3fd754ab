"""A SIGKILL of ``hotplex serve`` mid-turn, then a restart: every chat message is answered
once. The daemon is a real process with the fake agent CLI and a chat platform kept in
files (``hotplex.testing.file_chat``), which delivers every event again after the restart
the way a platform redelivers what it saw no answer for."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotplex.storage.sql import SqlStorage
from hotplex.testing.daemon import Daemon
from hotplex.testing.distributions import write_distribution
from hotplex.testing.fake_agent import write_wrapper
from hotplex.testing.file_chat import post, read_outbox

WORDS = " ".join(f"w{i}" for i in range(16))
FIRST = f"first {WORDS}"
SECOND = "second message"
ADDRESS = "filechat:w/D1"
POLL = 0.05


def write_config(tmp_path: Path, chat: Path) -> Path:
    config = {
        "engine": {"data_dir": str(tmp_path / "data"), "kill_grace": "1s"},
        "provider": {"binary": str(write_wrapper(tmp_path / "bin", "--fake-slow", "0.25"))},
        "server": {"port": 0, "rate_limit": {"enabled": False}},
        "plugins": {"filechat": {"enabled": True, "directory": str(chat)}},
    }
    path = tmp_path / "hotplex.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll another process's files (or database) until ``condition()`` is truthy."""
    try:
        async with asyncio.timeout(timeout):
            while not (found := await _call(condition)):
                await asyncio.sleep(POLL)
            return found
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def _call(condition: Callable[[], Any]) -> Any:
    result = condition()
    return await result if asyncio.iscoroutine(result) else result


def shown(calls: list[dict[str, Any]]) -> dict[str, str]:
    """Message id -> the text it shows last."""
    latest: dict[str, str] = {}
    for call in calls:
        if call["method"] in ("send", "update") and call["address"] == ADDRESS:
            latest[call["id"]] = call["text"]
    return latest


@pytest.mark.timeout(120)
async def test_a_sigkill_mid_turn_then_a_restart_answers_each_message_once(
    tmp_path: Path,
) -> None:
    chat = tmp_path / "chat"
    chat.mkdir()
    site = tmp_path / "site"
    write_distribution(
        site,
        "filechat-testing",
        entry_points={"hotplex": {"filechat": "hotplex.testing.file_chat"}},
    )
    env = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
        "CLAUDE_CONFIG_DIR": str(tmp_path / "claude"),
        "ANTHROPIC_API_KEY": "sk-unused-by-the-fake-agent",
    }
    daemon = Daemon(write_config(tmp_path, chat), env=env)
    db = SqlStorage(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'hotplex.db'}")
    await daemon.start()
    try:
        post(chat, id="1", channel="D1", user="U1", text=FIRST, direct=True)
        await until(
            lambda: any(t.startswith("echo: first") for t in shown(read_outbox(chat)).values()),
            20,
            "the first answer to start streaming",
        )
        post(chat, id="2", channel="D1", user="U1", text=SECOND, direct=True)
        await db.open()

        async def both_accepted() -> bool:
            turns = await db.pending_turns()
            return [t.state for t in turns] == ["started", "queued"]

        await until(both_accepted, 20, "the second message to be queued behind the first")
        await db.close()
        assert await daemon.kill() != 0
        killed_pid = daemon.pid
        before = read_outbox(chat)
        assert not any(SECOND in t for t in shown(before).values())

        await daemon.start()
        restarted = daemon.pid

        def answered() -> bool:
            after = [c for c in read_outbox(chat) if c["pid"] == restarted]
            return any(f"echo: {SECOND}" in t for t in shown(after).values())

        await until(answered, 30, "the queued message to be answered after the restart")
        await until(
            lambda: any(
                "interrupted_by_restart" in t
                for t in shown([c for c in read_outbox(chat) if c["pid"] == restarted]).values()
            ),
            10,
            "the interrupted turn to be reported in its conversation",
        )
    finally:
        await db.close()
        assert await daemon.stop() == 0, "".join(daemon.log[-40:])
    calls = read_outbox(chat)
    after = shown([c for c in calls if c["pid"] == restarted])
    # the second message: answered once, after the restart
    assert [i for i, t in shown(calls).items() if f"echo: {SECOND}" in t] == [
        i for i, t in after.items() if f"echo: {SECOND}" in t
    ]
    assert len([t for t in after.values() if f"echo: {SECOND}" in t]) == 1
    # the first: its agent turn is not run again (no second echo), its end is reported once
    assert not [t for t in after.values() if t.startswith("echo: first")]
    assert len([t for t in after.values() if "interrupted_by_restart" in t]) == 1
    assert {c["pid"] for c in calls} == {killed_pid, restarted}
    await db.open()
    try:
        assert await db.pending_inbound() == []
        assert await db.pending_turns() == []
    finally:
        await db.close()
