"""Benchmark of the Feishu adapter against the fake Feishu (hotplex.testing.feishu, the real
lark-oapi on both sides of the wire) with the fake agent, over the long connection, the
plain webhook and the encrypted webhook:

- ack: from the push of ``im.message.receive_v1`` to Feishu's answer (the WebSocket ack or
  the HTTP 200); Feishu re-pushes after 3 s;
- answer: from the push to the final card (streaming closed, footer shown);
- click: a card button answered (toast and card) through ``ChatBridge.decide``; Feishu
  allows 3 s;
- ten chats (encrypted webhook only): ten users' messages pushed at once, each answer timed
  from the push to its final card (the app's write budget is shared by all chats).

Run: .venv/bin/python bench/feishu.py [--quick]

Targets (2-core machine): ack p90 under 500 ms, click p90 under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from _report import Stats, Verdict, ms, progress
from aiohttp.test_utils import TestServer
from hotplex_feishu import plugin

from hotplex.compose import compose
from hotplex.config import load_settings
from hotplex.gateway import build_app
from hotplex.plugins import make_plugin_manager
from hotplex.testing.fakes import FakeChatAdapter, FakeProvider, ToolCall
from hotplex.testing.feishu import FakeFeishu
from hotplex.testing.running import FakePlatformPlugin

USER = "ou_bench"


async def settled(fake: FakeFeishu, text: str) -> None:
    def done() -> bool:
        return any(
            m.sender_type == "app"
            and text in m.text
            and m.card_id
            and not fake.cards[m.card_id].streaming_mode
            for m in fake.messages()
        )

    await fake.wait_for(done, 30.0)


async def run_mode(mode: str, n: int, folder: Path) -> dict[str, Stats]:
    key = "bench-key" if mode == "webhook-encrypted" else ""
    provider = FakeProvider()
    async with FakeFeishu(encrypt_key=key) as fake:
        section: dict[str, Any] = {
            "enabled": True, "mode": "ws" if mode == "ws" else "webhook",
            "app_id": fake.app_id, "app_secret": fake.app_secret, "domain": fake.base_url,
            "verification_token": fake.verification_token,
        }  # fmt: skip
        if key:
            section["encrypt_key"] = key
        raw = {
            "engine": {"data_dir": str(folder / mode)},
            "provider": {"type": "fake"},
            "plugins": {"feishu": section},
        }
        pm = make_plugin_manager(
            entry_points=False,
            environ={},
            extra=[
                ("fake_platform", FakePlatformPlugin(FakeChatAdapter(), provider)),
                ("feishu", plugin),
            ],
        )
        settings = load_settings(
            None, text=yaml.safe_dump(raw), sections=pm.config_sections().values(), environ={}
        ).settings
        server = TestServer(build_app(compose(settings, pm)), host="127.0.0.1")
        await server.start_server()
        try:
            if mode == "ws":
                await fake.wait_for(lambda: fake.connected, 30.0)
            else:
                fake.webhook_url = str(server.make_url("/feishu/events"))
            figures = await measure(fake, provider, n)
            if mode == "webhook-encrypted":  # the last mode: leaves nothing running after it
                figures["10 chats"] = await many_chats(fake)
            return figures
        finally:
            await server.close()


async def measure(fake: FakeFeishu, provider: FakeProvider, n: int) -> dict[str, Stats]:
    acks: list[float] = []
    answers: list[float] = []
    clicks: list[float] = []
    chat = fake.p2p_chat(USER)
    for i in range(n):
        started = time.perf_counter()
        await fake.user_message(chat, USER, f"bench {i}")
        acks.append(time.perf_counter() - started)
        await settled(fake, f"echo: bench {i}")
        answers.append(time.perf_counter() - started)
    for i in range(max(3, n // 4)):
        provider.queue_turn(ToolCall("Bash", {"command": f"true {i}"}))
        await fake.user_message(chat, USER, f"tool {i}")
        wanted = f"true {i}"

        def cards(w: str = wanted) -> list[Any]:  # the approval card (not the status line)
            return [m for m in fake.messages(chat) if w in m.text and _permission_id(m.card)]

        await fake.wait_for(lambda: bool(cards()), 30.0)
        card = cards()
        value = {"hotplex": "approval", "decision": "allow", "scope": "once"}
        value["id"] = _permission_id(card[0].card)
        started = time.perf_counter()
        answer = await fake.click_card(card[0].message_id, value, USER)
        clicks.append(time.perf_counter() - started)
        if answer.toast is None or answer.toast.get("type") != "success":
            raise RuntimeError(f"the click was not decided: {answer}")
    return {"ack": ms(acks), "answer": ms(answers), "click": ms(clicks)}


async def many_chats(fake: FakeFeishu, count: int = 10) -> Stats:
    """Ten users write at once, each in their own chat: push to final card, per answer."""
    chats = [(fake.p2p_chat(f"{USER}_{i}"), f"{USER}_{i}") for i in range(count)]
    started = time.perf_counter()

    async def one(i: int) -> float:
        chat, user = chats[i]
        await fake.user_message(chat, user, f"together {i}")
        await settled(fake, f"echo: together {i}")
        return time.perf_counter() - started

    return ms(list(await asyncio.gather(*(one(i) for i in range(count)))))


def _permission_id(card: Any) -> str:
    if isinstance(card, dict):
        if card.get("hotplex") == "approval":
            return str(card["id"])
        for value in card.values():
            found = _permission_id(value)
            if found:
                return found
    elif isinstance(card, list):
        for value in card:
            found = _permission_id(value)
            if found:
                return found
    return ""


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 messages per mode")
    args = parser.parse_args()
    n = 10 if args.quick else 40
    rows: dict[str, dict[str, Stats]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for mode in ("ws", "webhook", "webhook-encrypted"):
            progress(f"{mode}: {n} messages")
            rows[mode] = await run_mode(mode, n, Path(folder))
    print(f"{'mode':<18} {'figure':<8} {'n':>4} {'median ms':>10} {'p10':>8} {'p90':>8}")
    for mode, figures in rows.items():
        for name, stats in figures.items():
            print(
                f"{mode:<18} {name:<8} {stats.n:>4} {stats.median:>10.1f} "
                f"{stats.p10:>8.1f} {stats.p90:>8.1f}"
            )
    verdicts = [
        Verdict("ack p90 < 500 ms", all(f["ack"].p90 < 500 for f in rows.values()),
                ", ".join(f"{m} {f['ack'].p90:.0f} ms" for m, f in rows.items())),
        Verdict("click p90 < 1000 ms", all(f["click"].p90 < 1000 for f in rows.values()),
                ", ".join(f"{m} {f['click'].p90:.0f} ms" for m, f in rows.items())),
    ]  # fmt: skip
    for verdict in verdicts:
        print(verdict.line())


if __name__ == "__main__":
    asyncio.run(main())
