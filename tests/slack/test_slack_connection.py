"""The connection: Socket Mode reconnects on ``disconnect`` and on a silent socket; Slack
being down holds up nothing else; ``hotplex doctor`` checks the token, scopes and
connection."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml
from hotplex_slack import plugin
from hotplex_slack.doctor import REQUIRED_SCOPES, check_connection, check_scopes, check_token
from slack_kit import DM, USER, slack_hotplex, workspace

from hotplex.config import load_settings
from hotplex.context import PluginContext
from hotplex.plugins import make_plugin_manager
from hotplex.testing.running import running_hotplex
from hotplex.testing.slack import FakeSlack


async def test_socket_mode_reconnects_on_disconnect_and_on_a_silent_socket(
    tmp_path: Path,
) -> None:
    async with FakeSlack() as slack, slack_hotplex(tmp_path, workspace(slack)) as rig:
        opened = len(slack.sockets.history)
        await slack.disconnect_socket("refresh_requested", close_after=0.5)
        await slack.wait_for(lambda: len(slack.sockets.history) > opened, 15)
        await slack.wait_connected(timeout=15)
        ts = await slack.user_message(DM, USER, "after the refresh")
        await rig.answer(DM, ts, "echo: after the refresh", timeout=15)

        opened = len(slack.sockets.history)
        slack.silence_socket()  # half-open: no pongs; pings every 1 s, silent for 4: reconnect
        await slack.wait_for(lambda: len(slack.sockets.history) > opened, 20)
        await slack.wait_connected(timeout=15)
        ts = await slack.user_message(DM, USER, "after the silence")
        await rig.answer(DM, ts, "echo: after the silence", timeout=15)
        assert rig.adapter.state() == "connected"


async def test_slack_down_holds_up_no_other_platform(tmp_path: Path) -> None:
    async with FakeSlack() as slack:
        dead = slack.api_base_url  # the fake is closed below: nothing answers there
    config = {
        "plugins": {
            "slack": {
                "enabled": True,
                "bot_token": "xoxb-1",
                "app_token": "xapp-1",
                "api_base_url": dead,
                "timeout": 1,
            },
        }
    }
    async with running_hotplex(tmp_path, config=config, plugins=[("slack", plugin)]) as hp:
        slack_adapter = hp.runtime.adapters["slack"]
        for _ in range(200):  # auth.test fails (after slack-sdk's one retry)
            if slack_adapter.state() == "down":
                break
            await asyncio.sleep(0.05)
        assert slack_adapter.state() == "down"
        await hp.adapter.dm("still here")
        await hp.ops.wait_for(lambda: any("echo: still here" in t for t in hp.ops.texts()))
        assert slack_adapter.state() == "down"


def context(tmp_path: Path, slack: FakeSlack, **section: Any) -> PluginContext:
    pm = make_plugin_manager(entry_points=False, environ={}, extra=[("slack", plugin)])
    raw = {
        "engine": {"data_dir": str(tmp_path / "data")},
        "plugins": {
            "slack": {
                "enabled": True,
                "bot_token": slack.bot_token,
                "app_token": slack.app_token,
                "api_base_url": slack.api_base_url,
                **section,
            },
        },
    }
    settings = load_settings(
        None, text=yaml.safe_dump(raw), sections=pm.config_sections().values(), environ={}
    ).settings
    return PluginContext(settings=settings, plugins=pm)


async def test_doctor_checks_the_token_the_scopes_and_the_connection(tmp_path: Path) -> None:
    async with FakeSlack() as slack:
        slack.scopes = sorted(REQUIRED_SCOPES)
        ctx = context(tmp_path, slack)
        token, scopes, connection = [
            await check(ctx) for check in (check_token, check_scopes, check_connection)
        ]
        assert token.ok and slack.bot_user_id in token.detail, token
        assert scopes.ok, scopes
        assert connection.ok, connection

        slack.scopes = sorted(REQUIRED_SCOPES - {"files:write", "commands"})
        scopes = await check_scopes(ctx)
        assert not scopes.ok and "commands, files:write" in scopes.detail

        wrong = context(tmp_path, slack, bot_token="xoxb-wrong", app_token="xapp-wrong")
        token, connection = await check_token(wrong), await check_connection(wrong)
        assert not token.ok and "invalid_auth" in token.detail
        assert not connection.ok and connection.hint
        assert "xoxb-wrong" not in token.detail + (token.hint or "")
