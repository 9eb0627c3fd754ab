"""The pinned Claude Code CLI calls the agent tool ``schedule`` (approved in the chat), and
the follow-up it scheduled fires and answers in the same conversation."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from cron_kit import Start, cron_config, until
from hotplex_cron import plugin
from hotplex_cron.keys import CRON

from hotplex.testing.fake_anthropic import FakeAnthropic


@pytest.mark.real_cli
@pytest.mark.timeout(120)
async def test_the_real_cli_schedules_a_follow_up_that_fires(
    running_hotplex: Start, claude_binary: Path, fake_api: FakeAnthropic
) -> None:
    config = {
        **cron_config(),
        "provider": {"type": "claude-code", "binary": str(claude_binary)},
    }
    hp = await running_hotplex(config=config, plugins=[("cron", plugin)])
    cron = hp.runtime.ctx.services.get(CRON)
    soon = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 8))
    arguments = json.dumps(
        {"schedule": f"at {soon}", "prompt": "look at the build again", "name": "again"}
    )
    incoming = await hp.adapter.dm(f"MCP: mcp__hotplex__schedule {arguments}")
    await hp.ops.wait_for(lambda: any(c[0] == "ask_approval" for c in hp.ops.calls), timeout=60)
    [card] = [c for c in hp.ops.calls if c[0] == "ask_approval"]
    await hp.bridge.decide(card[2], "allow", by="fake:U1")

    async def scheduled() -> bool:
        return any(j["name"] == "again" for j in await cron.list_jobs())

    await until(scheduled, timeout=60)
    job = await cron.describe("again")
    assert (job["source"], job["job"]["deliver_to"]) == ("agent", [incoming.address])
    await hp.ops.wait_for(
        lambda: any("echo: look at the build again" in t for t in hp.ops.texts(incoming.address)),
        timeout=60,
    )
    [run] = await cron.history("again")
    assert (run["status"], run["trigger"]) == ("ok", "schedule")
