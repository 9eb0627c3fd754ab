"""Kit of the Feishu tests: HotPlex with the Feishu adapter (and the fake agent) against
the fake Feishu of ``hotplex.testing.feishu``, over the long connection or the webhook
(the gateway's app served on 127.0.0.1, the fake posting to its ``/feishu/...`` routes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp.test_utils import TestServer
from hotplex_feishu import plugin
from hotplex_feishu.adapter import FeishuAdapter

from hotplex.compose import compose
from hotplex.config import load_settings
from hotplex.gateway import build_app
from hotplex.plugins import make_plugin_manager
from hotplex.testing.fakes import FakeChatAdapter, FakeProvider
from hotplex.testing.feishu import FakeFeishu
from hotplex.testing.running import FakePlatformPlugin, RunningHotPlex

WAIT = 10.0
ALICE, BOB = "ou_alice", "ou_bob"


@dataclass
class Harness:
    hp: RunningHotPlex
    fake: FakeFeishu
    adapter: FeishuAdapter
    server: TestServer

    @property
    def provider(self) -> FakeProvider:
        return self.hp.provider

    def bot_messages(self, chat_id: str | None = None) -> list[Any]:
        return [m for m in self.fake.messages(chat_id) if m.sender_type == "app"]

    def texts(self, chat_id: str | None = None) -> list[str]:
        return [m.text for m in self.bot_messages(chat_id)]

    async def answer(self, predicate: Callable[[str], bool], timeout: float = WAIT) -> Any:
        """The first bot message whose shown text satisfies ``predicate``, once there is one
        (a streaming card: once its streaming ended)."""
        found: list[Any] = []

        def settled(message: Any) -> bool:
            if not message.card_id:
                return True
            card = self.fake.cards[message.card_id]
            return not card.streaming_mode

        def check() -> bool:
            found[:] = [m for m in self.bot_messages() if predicate(m.text) and settled(m)]
            return bool(found)

        await self.fake.wait_for(check, timeout)
        return found[0]


def feishu_config(fake: FakeFeishu, mode: str, **extra: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "enabled": True,
        "mode": mode,
        "app_id": fake.app_id,
        "app_secret": fake.app_secret,
        "domain": fake.base_url,
        "min_update_interval": 0.2,
    }
    if mode == "webhook":
        section["verification_token"] = fake.verification_token
        if fake.encrypt_key:
            section["encrypt_key"] = fake.encrypt_key
    section.update(extra)
    return section


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@asynccontextmanager
async def feishu_hotplex(
    path: Path,
    fake: FakeFeishu,
    *,
    mode: str = "ws",
    provider: FakeProvider | None = None,
    config: Mapping[str, Any] | None = None,
    feishu: Mapping[str, Any] | None = None,
    expect: str = "connected",
) -> AsyncIterator[Harness]:
    """HotPlex (data under ``path``) served like the daemon (the gateway's app on
    127.0.0.1 runs it), with the fake agent and the Feishu adapter connected to ``fake``;
    in webhook mode the fake posts to the app's ``/feishu/...`` routes."""
    provider = provider or FakeProvider()
    raw = _merge(
        {
            "engine": {"data_dir": str(path / "data")},
            "provider": {"type": "fake"},
            "plugins": {"feishu": feishu_config(fake, mode, **(feishu or {}))},
        },
        config or {},
    )
    pm = make_plugin_manager(
        entry_points=False,
        environ={},
        extra=[("fake_platform", FakePlatformPlugin(FakeChatAdapter(), provider)),
               ("feishu", plugin)],
    )  # fmt: skip
    settings = load_settings(
        None, text=yaml.safe_dump(raw), sections=pm.config_sections().values(), environ={}
    ).settings
    runtime = compose(settings, pm)
    server = TestServer(build_app(runtime), host="127.0.0.1")
    await server.start_server()
    try:
        adapter = runtime.adapters["feishu"]
        assert isinstance(adapter, FeishuAdapter)
        if mode == "webhook":
            fake.webhook_url = str(server.make_url("/feishu/events"))
            fake.card_url = str(server.make_url("/feishu/cards"))
        await wait_until(lambda: adapter.state() == expect)
        if mode == "ws" and expect == "connected":
            await fake.wait_for(lambda: fake.connected, WAIT)
        hp = RunningHotPlex(runtime, provider, FakeChatAdapter())
        yield Harness(hp, fake, adapter, server)
    finally:
        await server.close()


async def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll ``condition`` (bounded) every 20 ms."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
