"""The long connection: lark-oapi's client on its own thread and loop while HotPlex's loop
stays free; a clean shutdown (the thread joined, no thread left); a reconnect after the
server drops the socket; a clear error and a stop when the credentials are refused."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import pytest
from feishu_adapter_kit import ALICE, WAIT, feishu_hotplex, wait_until
from hotplex_feishu.longconn import LongConnection, LongConnectionError

from hotplex.testing.fakes import FakeProvider
from hotplex.testing.feishu import FakeFeishu


def feishu_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("feishu-ws:")]


def own_threads() -> set[str]:
    """Threads other than the test loop's executor workers (``asyncio_N``)."""
    return {t.name for t in threading.enumerate() if not t.name.startswith("asyncio_")}


async def test_the_connection_runs_on_its_own_thread_and_stops_cleanly(tmp_path: Path) -> None:
    before = own_threads()
    async with FakeFeishu() as fake:
        with_fake = own_threads()
        async with feishu_hotplex(tmp_path, fake, provider=FakeProvider()) as h:
            assert len(feishu_threads()) == 1
            connection = h.adapter.connection
            assert connection is not None
            # HotPlex's loop is free while the client blocks its own
            ticks = 0
            for _ in range(5):
                await asyncio.sleep(0.01)
                ticks += 1
            assert ticks == 5
            chat = fake.p2p_chat(ALICE)
            await fake.user_message(chat, ALICE, "over the socket")
            await h.answer(lambda t: "echo: over the socket" in t and "tokens" in t)
            ack = fake.acks[-1]
            assert ack.code == 200
        assert feishu_threads() == []
        await fake.wait_for(lambda: fake.connection_count == 0, WAIT)
        # aiosqlite's close() only asks its worker thread to end: give a thread that is
        # ending a bounded moment; one that was left behind stays and fails the check
        await settled(with_fake)
    await settled(before)


async def settled(expected: set[str]) -> None:
    try:
        await wait_until(lambda: own_threads() == expected, timeout=5.0)
    except TimeoutError:
        pass
    assert own_threads() == expected


async def test_two_connections_in_one_process_do_not_share_a_loop(tmp_path: Path) -> None:
    async with FakeFeishu() as one, FakeFeishu() as two:
        async with (
            feishu_hotplex(tmp_path / "a", one) as a,
            feishu_hotplex(tmp_path / "b", two) as b,
        ):
            assert len(feishu_threads()) == 2
            for fake, h in ((one, a), (two, b)):
                chat = fake.p2p_chat(ALICE)
                await fake.user_message(chat, ALICE, f"to {fake.app_id}")
                await h.answer(lambda t, f=fake: f"echo: to {f.app_id}" in t)
        assert feishu_threads() == []


async def test_a_dropped_connection_reconnects(tmp_path: Path) -> None:
    config = {
        "ReconnectCount": -1,
        "ReconnectInterval": 1,
        "ReconnectNonce": 1,
        "PingInterval": 120,
    }
    async with (
        FakeFeishu(client_config=config) as fake,
        feishu_hotplex(tmp_path, fake) as h,
    ):
        assert fake.endpoint_requests == 1
        await fake.drop_connection()
        await fake.wait_for(lambda: fake.endpoint_requests == 2 and fake.connected, WAIT)
        await wait_until(lambda: h.adapter.state() == "connected")
        chat = fake.p2p_chat(ALICE)
        await fake.user_message(chat, ALICE, "after the drop")
        await h.answer(lambda t: "echo: after the drop" in t)


async def test_refused_credentials_stop_the_connection_with_a_clear_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import lark_oapi as lark

    async with FakeFeishu() as fake:
        fake.reject_connections(1000040344, "no credential")
        handler = lark.EventDispatcherHandler.builder("", "").build()
        connection = LongConnection(
            app_id=fake.app_id, app_secret="wrong", domain=fake.base_url, handler=handler
        )
        connection.start()
        with pytest.raises(LongConnectionError, match=r"refused the long connection.*app_secret"):
            await asyncio.wait_for(connection.wait(), WAIT)
        await connection.stop()
        assert feishu_threads() == []


async def test_a_refused_reconnect_stops_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = {
        "ReconnectCount": -1,
        "ReconnectInterval": 1,
        "ReconnectNonce": 0,
        "PingInterval": 120,
    }
    async with (
        FakeFeishu(client_config=config) as fake,
        feishu_hotplex(tmp_path, fake) as h,
    ):
        fake.reject_connections(1000040344, "app disabled")
        with caplog.at_level(logging.ERROR):
            await fake.drop_connection()
            await wait_until(lambda: h.adapter.state() == "down")
            await wait_until(lambda: "refused the long connection" in caplog.text)
        assert feishu_threads() == []


async def test_bad_app_credentials_fail_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeFeishu() as fake:
        with caplog.at_level(logging.ERROR):
            async with feishu_hotplex(
                tmp_path, fake, feishu={"app_secret": "wrong"}, expect="down"
            ) as h:
                assert h.adapter.state() == "down"
                await wait_until(lambda: "tenant token" in caplog.text)
        assert feishu_threads() == []


async def test_a_busy_feishu_at_start_is_retried(tmp_path: Path) -> None:
    async with FakeFeishu() as fake:
        fake.fail_next("bot.info", 1, msg="system busy", status=503, times=2)
        async with feishu_hotplex(tmp_path, fake) as h:
            assert [c.status for c in fake.calls_named("bot.info")] == [503, 503, 200]
            chat = fake.p2p_chat(ALICE)
            await fake.user_message(chat, ALICE, "finally")
            await h.answer(lambda t: "echo: finally" in t)
