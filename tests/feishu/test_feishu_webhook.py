"""The webhook routes: a bad signature, a stale timestamp or a wrong token is refused with
401 (no exception text) and nothing runs; url_verification; malformed bodies get 400."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest
from feishu_adapter_kit import ALICE, feishu_hotplex

from hotplex.testing.fakes import FakeProvider
from hotplex.testing.feishu import FakeFeishu


@pytest.mark.parametrize("forgery", ["signature", "stale", "future", "token"])
async def test_a_forged_event_is_refused_and_nothing_runs(tmp_path: Path, forgery: str) -> None:
    async with (
        FakeFeishu(encrypt_key="ek-1") as fake,
        feishu_hotplex(tmp_path, fake, mode="webhook", provider=FakeProvider()) as h,
    ):
        chat = fake.p2p_chat(ALICE)
        token = "wrong-token" if forgery == "token" else None
        payload = fake.prepare_user_message(chat, ALICE, "forged", token=token)
        overrides: dict[str, str] = {}
        if forgery == "signature":
            overrides["signature"] = "0" * 64
        elif forgery == "stale":
            overrides["timestamp"] = str(int(time.time()) - 301)
        elif forgery == "future":
            overrides["timestamp"] = str(int(time.time()) + 301)
        delivery = await fake.deliver(payload, **overrides)
        assert delivery.status == 401
        assert delivery.answer == {"msg": "unauthorized"}
        # a genuine message afterwards runs, and only it
        await fake.user_message(chat, ALICE, "genuine")
        await h.answer(lambda t: "echo: genuine" in t and "tokens" in t)
        assert [p.prompts for p in h.provider.processes] == [["genuine"]]
        assert not any("forged" in t for t in h.texts())


@pytest.mark.parametrize("key", ["", "ek-2"])
async def test_url_verification(tmp_path: Path, key: str) -> None:
    async with (
        FakeFeishu(encrypt_key=key) as fake,
        feishu_hotplex(tmp_path, fake, mode="webhook") as h,
    ):
        del h
        ok = await fake.verify_url()
        assert ok.status == 200 and ok.answer is not None and "challenge" in ok.answer
        wrong = await fake.verify_url(token="nope")
        assert wrong.status == 401


async def test_malformed_bodies_get_400_without_details(tmp_path: Path) -> None:
    async with (
        FakeFeishu(encrypt_key="ek-3") as fake,
        feishu_hotplex(tmp_path, fake, mode="webhook") as h,
        aiohttp.ClientSession() as session,
    ):
        url = str(h.server.make_url("/feishu/events"))
        for body in (b"{not json", b"[]", b'{"encrypt": "!!!not base64"}', b'{"encrypt": "AAAA"}'):
            async with session.post(url, data=body) as response:
                assert response.status == 400
                assert await response.json() == {"msg": "bad request"}


async def test_events_it_does_not_handle_are_acknowledged(tmp_path: Path) -> None:
    async with (
        FakeFeishu() as fake,
        feishu_hotplex(tmp_path, fake, mode="webhook") as h,
    ):
        del h
        delivery = await fake.deliver(fake.envelope("im.chat.updated_v1", {"chat_id": "oc_1"}))
        assert delivery.status == 200
