"""``hotplex status`` and ``hotplex sessions ...`` against a live ``hotplex serve`` (the fake
Claude CLI as the agent, SQLite storage), run in-process through click's CliRunner."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import click
import pytest
from cli_kit import KEY, TOKEN, free_port, write_config
from click.testing import CliRunner, Result

from hotplex.address import session_id_for
from hotplex.cli import build_cli, client
from hotplex.client import DaemonClient
from hotplex.config.models import DEFAULT_NAMESPACE
from hotplex.plugins import make_plugin_manager
from hotplex.testing.daemon import Daemon


def cli() -> click.Group:
    return build_cli(make_plugin_manager(entry_points=False, environ={}))


def invoke(args: list[str], env: dict[str, str] | None = None) -> Result:
    base = {"HOTPLEX_URL": None, "HOTPLEX_TOKEN": None, "HOTPLEX_CONFIG": None}
    return CliRunner().invoke(cli(), args, env={**base, **(env or {})}, catch_exceptions=False)


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    env = {"CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}
    running = Daemon(write_config(tmp_path), env=env)
    await running.start()
    try:
        async with running.client(KEY) as ws:
            await ws.execute("chat", "hello there")
        yield running
    finally:
        assert await running.stop() == 0


async def run(args: list[str], env: dict[str, str] | None = None) -> Result:
    """Invoke off the event loop (the daemon's output is drained meanwhile), bounded."""
    return await asyncio.wait_for(asyncio.to_thread(invoke, args, env), 30)


SESSION = session_id_for("web:tester/chat", DEFAULT_NAMESPACE)


@pytest.mark.timeout(120)
async def test_client_commands_against_a_live_daemon(daemon: Daemon) -> None:
    flags = ["--url", daemon.url, "--token", TOKEN]
    env = {"HOTPLEX_URL": daemon.url, "HOTPLEX_TOKEN": TOKEN}

    result = await run(["status", *flags])
    assert result.exit_code == 0, result.output
    assert f"running at {daemon.url}" in result.output
    assert "sessions   1 (1 idle, 0 running, 0 stopped)" in result.output

    status = json.loads((await run(["status", "--json"], env)).output)
    assert status["sessions"] == 1 and status["turns"] == 1 and status["live_processes"] == 1

    table = (await run(["sessions", "list"], env)).output.splitlines()
    assert table[0].split() == [
        "SESSION", "ADDRESS", "STATE", "IDLE", "TURNS", "TOKENS", "COST", "PID", "QUEUED"
    ]  # fmt: skip
    assert table[1].split()[:3] == [SESSION, "web:tester/chat", "idle"]
    (row,) = json.loads((await run(["sessions", "list", "--json"], env)).output)["sessions"]
    assert row["session_id"] == SESSION and row["pid"] is not None

    shown = await run(["sessions", "show", SESSION], env)
    assert shown.exit_code == 0 and "web:tester/chat" in shown.output
    assert "pending approvals: 0" in shown.output

    logs = await run(["sessions", "logs", SESSION], env)
    assert logs.exit_code == 0, logs.output
    kinds = [line.split()[2] for line in logs.output.splitlines()]
    assert kinds[-1] == "done" and "text" in kinds
    events = [json.loads(line) for line in (await run(["sessions", "logs", SESSION, "--json"], env))
              .output.splitlines()]  # fmt: skip
    last = events[-1]["seq"]
    later = await run(["sessions", "logs", SESSION, "--json", "--since", str(last - 1)], env)
    assert [json.loads(line)["seq"] for line in later.output.splitlines()] == [last]

    killed = await run(["sessions", "kill", SESSION], env)
    assert killed.exit_code == 0 and killed.output.strip() == f"killed {SESSION}"
    shown = json.loads((await run(["sessions", "show", SESSION, "--json"], env)).output)
    assert shown["state"] == "stopped" and shown["pid"] is None

    missing = await run(["sessions", "show", "nope"], env)
    assert missing.exit_code == 1
    assert "answered 404: No session 'nope'." in missing.output

    refused = await run(["status", "--url", daemon.url, "--token", "wrong"])
    assert refused.exit_code == 1 and "refused the request (401)" in refused.output


@pytest.mark.timeout(120)
async def test_logs_follow_polls_until_interrupted(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    polls: list[float] = []

    def sleep(seconds: float) -> None:  # the second pause is the user's Ctrl-C
        polls.append(seconds)
        if len(polls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(client.time, "sleep", sleep)
    env = {"HOTPLEX_URL": daemon.url, "HOTPLEX_TOKEN": TOKEN}
    result = await run(["sessions", "logs", SESSION, "--follow", "--interval", "0.2"], env)
    assert result.exit_code == 0, result.output
    assert polls == [0.2, 0.2]
    assert result.output.splitlines()[-1].split()[2] == "done"


def test_an_unreachable_daemon_is_one_line_and_exit_1() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["status"], ["sessions", "list"], ["sessions", "logs", "x"]):
        result = invoke([*args, "--url", url])
        assert result.exit_code == 1
        assert result.output == (
            f"hotplex: cannot reach HotPlex at {url}: connection refused; "
            "is `hotplex serve` running?\n"
        )


def test_the_daemon_is_found_from_the_config(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port=port)
    result = invoke(["--config", str(config), "status"])
    assert result.exit_code == 1
    assert f"cannot reach HotPlex at http://127.0.0.1:{port}:" in result.output
    # the environment wins over the config
    other = f"http://127.0.0.1:{free_port()}"
    result = invoke(["--config", str(config), "sessions", "list"], {"HOTPLEX_URL": other})
    assert f"cannot reach HotPlex at {other}:" in result.output


def test_the_token_comes_from_the_config(tmp_path: Path) -> None:
    seen: list[DaemonClient] = []
    original: Callable[..., DaemonClient] = client._daemon

    def spy(*args: Any) -> DaemonClient:
        found = original(*args)
        seen.append(found)
        return found

    config = write_config(tmp_path, host="0.0.0.0", port=free_port())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(client, "_daemon", spy)
        invoke(["--config", str(config), "status"])
        invoke(["--config", str(config), "status", "--token", "given"])
    assert seen[0].token == TOKEN and seen[0].url.startswith("http://127.0.0.1:")
    assert seen[1].token == "given"


def test_help_is_fast_and_lists_the_commands() -> None:
    result = invoke(["sessions", "--help"])
    assert result.exit_code == 0
    for name in ("list", "show", "kill", "logs"):
        assert name in result.output
