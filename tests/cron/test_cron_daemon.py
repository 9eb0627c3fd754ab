"""``hotplex cron ...`` against a real ``hotplex serve`` (the fake Claude CLI as the agent,
a chat platform kept in files): a job added from the CLI fires on a real 2-second interval,
runs through the engine, and its answer reaches the chat and the web chat; ``cron run``,
``cron list`` and ``cron history`` work."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner, Result
from hotplex_cron import plugin

from hotplex.address import session_id_for
from hotplex.cli import build_cli
from hotplex.client import DaemonClient
from hotplex.config.models import DEFAULT_NAMESPACE
from hotplex.plugins import make_plugin_manager
from hotplex.testing.daemon import Daemon
from hotplex.testing.distributions import write_distribution
from hotplex.testing.fake_agent import write_wrapper
from hotplex.testing.file_chat import read_outbox

TOKEN = "admin-cron-0123456789"
CHAT = "filechat:w/D1"
WEB = "web:tester/s1"


def cli() -> click.Group:
    return build_cli(make_plugin_manager(entry_points=False, environ={}, extra=[("cron", plugin)]))


async def run(*args: str) -> Result:
    def invoke() -> Result:
        env = {"HOTPLEX_URL": None, "HOTPLEX_TOKEN": None, "HOTPLEX_CONFIG": None}
        return CliRunner().invoke(cli(), list(args), env=env, catch_exceptions=False)

    return await asyncio.wait_for(asyncio.to_thread(invoke), 30)


async def until(condition: Any, timeout: float, what: str) -> Any:
    try:
        async with asyncio.timeout(timeout):
            while not (found := await asyncio.to_thread(condition)):
                await asyncio.sleep(0.1)
            return found
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def write_config(tmp_path: Path, chat: Path) -> Path:
    config = {
        "engine": {"data_dir": str(tmp_path / "data"), "kill_grace": "1s"},
        "provider": {"binary": str(write_wrapper(tmp_path / "bin"))},
        "server": {"port": 0, "admin_token": TOKEN, "rate_limit": {"enabled": False}},
        "plugins": {
            "filechat": {"enabled": True, "directory": str(chat)},
            "cron": {"min_interval": "1s", "lease_ttl": "3s"},
        },
    }
    path = tmp_path / "hotplex.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.timeout(120)
async def test_a_job_added_with_the_cli_fires_and_answers_in_chat_and_web(
    tmp_path: Path,
) -> None:
    chat = tmp_path / "chat"
    chat.mkdir()
    site = tmp_path / "site"
    filechat = {"hotplex": {"filechat": "hotplex.testing.file_chat"}}
    write_distribution(site, "filechat-testing", entry_points=filechat)
    env = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
        "CLAUDE_CONFIG_DIR": str(tmp_path / "claude"),
    }
    daemon = Daemon(write_config(tmp_path, chat), env=env)
    await daemon.start()
    try:
        flags = ["--url", daemon.url, "--token", TOKEN]
        added = await run(
            "cron", "add", "tick", "--schedule", "every 2s",
            "--prompt", "tick {{ trigger }}", "--tz", "Europe/Berlin",
            "--deliver-to", CHAT, "--deliver-to", WEB, *flags,
        )  # fmt: skip
        assert added.exit_code == 0, added.output
        assert "tick: enabled, cli job, next 20" in added.output

        def answered(text: str) -> bool:
            return any(
                c["method"] == "send" and c["address"] == CHAT and text in c["text"]
                for c in read_outbox(chat)
            )

        await until(lambda: answered("echo: tick schedule"), 30, "a scheduled run's answer")
        client = DaemonClient(daemon.url, TOKEN)
        session = session_id_for(WEB, DEFAULT_NAMESPACE)

        def web_messages() -> list[str]:
            events = client.request("GET", f"/admin/v1/sessions/{session}/events")["events"]
            return [e["data"]["text"] for e in events if e["type"] == "message"]

        await until(lambda: any("echo: tick schedule" in t for t in web_messages()), 10, "web")

        listed = await run("cron", "list", *flags)
        assert listed.exit_code == 0, listed.output
        row = next(line for line in listed.output.splitlines() if line.startswith("tick"))
        assert "cli" in row and "every 2s" in row and "Europe/Berlin" in row
        assert "+01:00" in row or "+02:00" in row  # the next fire time in the job's zone
        assert "this daemon schedules" in listed.output

        fired = await run("cron", "run", "tick", *flags)
        assert fired.exit_code == 0 and "run " in fired.output, fired.output
        await until(lambda: answered("echo: tick manual"), 30, "the manual run's answer")

        def history() -> str:
            result = invoke_history(daemon.url)
            return result if "manual" in result and "echo: tick manual" in result else ""

        shown = await until(history, 20, "the manual run in the history")
        lines = shown.splitlines()
        assert lines[0].split() == ["DUE", "(UTC)", "TRIGGER", "STATUS", "DURATION", "COST",
                                    "OUTPUT", "ERROR"]
        assert any("schedule" in line and " ok " in line for line in lines[1:])

        paused = await run("cron", "pause", "tick", *flags)
        assert "tick: paused" in paused.output
        missing = await run("cron", "history", "nope", *flags)
        assert missing.exit_code == 1 and "no cron job named 'nope'" in missing.output
        bad = await run("cron", "add", "bad", "--schedule", "0 0 *", "--prompt", "x", *flags)
        assert bad.exit_code == 1 and "expected 5 fields" in bad.output
    finally:
        assert await daemon.stop() == 0


def invoke_history(url: str) -> str:
    runner = CliRunner()
    env = {"HOTPLEX_URL": None, "HOTPLEX_TOKEN": None, "HOTPLEX_CONFIG": None}
    result = runner.invoke(
        cli(), ["cron", "history", "tick", "--url", url, "--token", TOKEN], env=env
    )
    return result.output
