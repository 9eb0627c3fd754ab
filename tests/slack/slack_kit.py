"""Kit of the Slack tests: HotPlex with the Slack adapter (Socket Mode or HTTP mode, the
gateway serving ``/slack/events``) and core's fake agent, against the fake Slack of
``hotplex.testing.slack`` on 127.0.0.1, which the real slack-sdk and slack-bolt talk to."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from aiohttp.test_utils import TestClient, TestServer
from hotplex_slack import plugin
from hotplex_slack.adapter import SlackAdapter

from hotplex import hookimpl
from hotplex.compose import compose
from hotplex.config import load_settings
from hotplex.engine import ENGINE, Engine
from hotplex.gateway import build_app
from hotplex.plugins import make_plugin_manager
from hotplex.records import ProviderSpec
from hotplex.runtime import Runtime
from hotplex.testing.fakes import FakeProvider
from hotplex.testing.slack import FakeSlack, Message

Mode = Literal["socket", "http"]
MODES: tuple[Mode, ...] = ("socket", "http")
WAIT = 10.0
CHANNEL, DM, USER, OTHER = "C1", "DU1", "U1", "U2"


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def workspace(slack: FakeSlack) -> FakeSlack:
    """Channel C1 with U1 and U2 (and the bot), and U1's DM with the bot (DU1)."""
    slack.add_channel(CHANNEL, members=[USER, OTHER])
    slack.add_dm(USER)
    return slack


@dataclass
class SlackRig:
    """A running HotPlex with the Slack adapter, its fake agent and the fake Slack."""

    slack: FakeSlack
    runtime: Runtime
    provider: FakeProvider
    client: TestClient

    @property
    def adapter(self) -> SlackAdapter:
        adapter = self.runtime.adapters["slack"]
        assert isinstance(adapter, SlackAdapter)
        return adapter

    @property
    def engine(self) -> Engine:
        return self.runtime.ctx.services.get(ENGINE)

    def replies(self, channel: str, thread_ts: str) -> list[Message]:
        """The bot's messages in a thread (cards and status lines included)."""
        return [m for m in self.slack.messages(channel, thread_ts) if m.by_bot]

    async def answer(
        self, channel: str, thread_ts: str, text: str, timeout: float = WAIT
    ) -> Message:
        """The bot's finished message in the thread that contains ``text``."""

        def found() -> Message | None:
            for message in self.replies(channel, thread_ts):
                if text in message.text and message.streaming in (None, "completed"):
                    return message
            return None

        return await self.slack.wait_for(found, timeout)


@asynccontextmanager
async def slack_hotplex(
    tmp_path: Path,
    slack: FakeSlack,
    *,
    mode: Mode = "socket",
    provider: FakeProvider | None = None,
    slack_config: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    claude: Path | None = None,
) -> AsyncIterator[SlackRig]:
    """HotPlex with data under ``tmp_path`` (so a second one over the same folder is a
    restart), its Slack adapter pointed at ``slack``, ready to take events; the agent is
    the fake provider, or the real Claude Code CLI at ``claude``."""
    fake = provider or FakeProvider()

    class Agent:
        @hookimpl
        def hotplex_register_providers(self) -> list[ProviderSpec]:
            return [ProviderSpec("fake", lambda ctx: fake)]

    extra: list[tuple[str, Any]] = [("slack", plugin)]
    if claude is None:
        extra.append(("agent", Agent()))
    pm = make_plugin_manager(entry_points=False, environ={}, extra=extra)
    section: dict[str, Any] = {
        "enabled": True,
        "mode": mode,
        "bot_token": slack.bot_token,
        "api_base_url": slack.api_base_url,
        "min_update_interval": 0.05,
        "timeout": 5,
        "ping_interval": 1,
    }
    if mode == "socket":
        section["app_token"] = slack.app_token
    else:
        section["signing_secret"] = slack.signing_secret
    raw = _merge(
        {
            "server": {"rate_limit": {"enabled": False}},
            "engine": {"data_dir": str(tmp_path / "data")},
            "provider": {"type": "fake"} if claude is None else {"binary": str(claude)},
            "plugins": {"slack": _merge(section, slack_config or {})},
        },
        config or {},
    )
    settings = load_settings(
        None, text=yaml.safe_dump(raw), sections=pm.config_sections().values(), environ={}
    ).settings
    runtime = compose(settings, pm)
    async with TestClient(TestServer(build_app(runtime), host="127.0.0.1")) as client:
        rig = SlackRig(slack, runtime, fake, client)
        if mode == "http":
            slack.http_target = str(client.make_url("/slack/events"))
        else:
            slack.http_target = None
        await slack.wait_for(rig.adapter.ready, WAIT)
        if mode == "socket":
            await slack.wait_connected(timeout=WAIT)
        yield rig
