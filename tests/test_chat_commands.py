"""Core chat commands through a running Runtime (engine with the fake provider)."""

from __future__ import annotations

from typing import Any

import pytest

from hotplex.engine import ENGINE
from hotplex.runtime import Runtime
from hotplex.testing.fakes import FakeProvider


@pytest.fixture
async def runtime(running_hotplex: Any) -> tuple[Runtime, FakeProvider]:
    hp = await running_hotplex()
    return hp.runtime, hp.provider


async def say(rt: Runtime, text: str, platform: str = "web") -> str | None:
    return await rt.chat_commands.handle(
        text,
        address="web:a/b",
        user="u",
        platform=platform,
        services=rt.ctx.services,
        session_key="web:a/b",
    )


async def test_help_lists_commands_with_the_platform_prefix(runtime: Any) -> None:
    rt, _ = runtime
    reply = await say(rt, "/help")
    assert reply is not None and "`/reset`" in reply and "`/mode`" in reply
    slack = await say(rt, "/hotplex help", platform="slack")
    assert slack is not None and "`/hotplex reset`" in slack
    assert await say(rt, "/nope") == "Unknown command `/nope`. Try `/help`."
    assert await say(rt, "plain text") is None


async def test_status_stop_reset_model_mode(runtime: Any) -> None:
    rt, provider = runtime
    engine = rt.ctx.services.get(ENGINE)
    assert await say(rt, "/status") == "No session yet: send a message to start one."
    await (await engine.execute("web:a/b", "hi")).collect(5)
    status = await say(rt, "/status")
    assert status is not None and "idle, 1 turns" in status
    assert await say(rt, "/stop") == "Nothing is running."
    assert await say(rt, "/model sonnet") == "Model set to `sonnet`."
    assert await say(rt, "/mode plan") == "Permission mode set to `plan`."
    assert (await say(rt, "/mode yolo") or "").startswith("Usage:")
    assert provider.processes[0].controls == [
        ("set_model", {"model": "sonnet"}),
        ("set_permission_mode", {"mode": "plan"}),
    ]
    assert await say(rt, "/reset") == "Started a fresh conversation; the agent forgot this one."
    await (await engine.execute("web:a/b", "again")).collect(5)
    # overrides survive the respawn
    assert provider.processes[1].controls == provider.processes[0].controls
