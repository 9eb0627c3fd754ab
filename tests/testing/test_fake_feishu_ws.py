"""The real ``lark_oapi.ws.Client`` against the fake's long connection: endpoint discovery,
pings and pongs, events and their acks, card callbacks answered through the ack,
fragments, re-pushes, reconnects and refusals; every thread ends."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from fake_feishu_kit import Recorder, WsClientThread, lark_client
from lark_oapi.api.im.v1 import CreateMessageRequest, CreateMessageRequestBody
from lark_oapi.ws.exception import ClientException

from hotplex.testing.feishu import FakeFeishu, Frame, Limits

FAST = {"PingInterval": 1, "ReconnectInterval": 1, "ReconnectNonce": 0, "ReconnectCount": -1}
CONNECT_TIMEOUT = 10.0


def live_threads() -> set[str]:
    # asyncio's default executor keeps its worker threads: they are not ours to end
    return {t.name for t in threading.enumerate() if not t.name.startswith("asyncio_")}


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    before = live_threads()
    yield
    assert live_threads() == before


@pytest.fixture
async def fs() -> AsyncIterator[FakeFeishu]:
    async with FakeFeishu(client_config=FAST) as fake:
        fake.add_chat("oc_g", "group", members=["ou_alice"])
        yield fake


@pytest.fixture
async def connected(fs: FakeFeishu) -> AsyncIterator[tuple[FakeFeishu, Recorder, WsClientThread]]:
    recorder = Recorder()
    client = WsClientThread(fs, recorder.handler()).start()
    try:
        await fs.wait_for(lambda: fs.connected, CONNECT_TIMEOUT)
        yield fs, recorder, client
    finally:
        await asyncio.to_thread(client.stop)
    assert client.error is None


async def test_the_client_connects_pings_and_takes_the_server_config(
    connected: tuple[FakeFeishu, Recorder, WsClientThread],
) -> None:
    fs, _, client = connected
    assert fs.endpoint_requests == 1 and fs.connection_count == 1
    # the first ping comes at once; the next after the PingInterval of 1 s
    fs.set_client_config(ReconnectInterval=7)
    await fs.wait_for(lambda: fs.pings >= 2, 5.0)
    # each pong carries the ClientConfig, which the SDK applies (read from its private state:
    # nothing else shows it)
    await fs.wait_for(lambda: client.client._reconnect_interval == 7, 5.0)
    with pytest.raises(ValueError, match="unknown"):
        fs.set_client_config(Ping=1)


async def test_an_event_is_handled_and_acked(
    connected: tuple[FakeFeishu, Recorder, WsClientThread],
) -> None:
    fs, recorder, _ = connected
    message_id = await fs.user_message("oc_g", "ou_alice", "hi", mention_bot=True)
    delivery = fs.deliveries[-1]
    assert (delivery.via, delivery.status) == ("ws", 200)
    [ack] = fs.acks
    assert ack.code == 200 and ack.event_id == delivery.event_id and ack.data is None
    headers = dict(ack.headers)
    assert headers["type"] == "event" and headers["sum"] == "1" and "biz_rt" in headers
    [event] = recorder.messages
    assert event.event.message.message_id == message_id
    assert event.header.event_id == delivery.event_id


async def test_a_card_callback_is_answered_through_the_ack(
    connected: tuple[FakeFeishu, Recorder, WsClientThread],
) -> None:
    fs, recorder, _ = connected
    card = {"schema": "2.0", "body": {"elements": [{"tag": "markdown", "content": "Allow?"}]}}
    done = {"schema": "2.0", "body": {"elements": [{"tag": "markdown", "content": "Allowed"}]}}
    recorder.card_answer = {
        "toast": {"type": "info", "content": "Noted"},
        "card": {"type": "raw", "data": done},
    }
    body = CreateMessageRequestBody.builder().receive_id("oc_g").msg_type("interactive")
    request = CreateMessageRequest.builder().receive_id_type("chat_id")
    sent = await lark_client(fs).im.v1.message.acreate(
        request.request_body(body.content(json.dumps(card)).build()).build()
    )
    answer = await fs.click_card(sent.data.message_id, {"decision": "allow"}, "ou_alice")
    assert answer.status == 200 and answer.toast == {"type": "info", "content": "Noted"}
    assert answer.applied and fs.message(sent.data.message_id).text == "Allowed"
    assert recorder.clicks[0].event.action.value == {"decision": "allow"}


async def test_a_fragmented_event_is_reassembled(
    connected: tuple[FakeFeishu, Recorder, WsClientThread],
) -> None:
    fs, recorder, _ = connected
    text = "long " * 400
    await fs.user_message("oc_g", "ou_alice", text, fragments=3)
    assert fs.deliveries[-1].status == 200
    assert len(fs.acks) == 1 and dict(fs.acks[0].headers)["sum"] == "3"
    assert [m.event.message.content for m in recorder.messages] == [json.dumps({"text": text})]


async def test_a_failed_event_is_acked_500_and_repushed(
    connected: tuple[FakeFeishu, Recorder, WsClientThread],
) -> None:
    fs, recorder, _ = connected
    recorder.fail = True
    await fs.user_message("oc_g", "ou_alice", "first try")
    assert fs.deliveries[-1].status == 500 and fs.acks[-1].code == 500
    recorder.fail = False
    again = await fs.repush(fs.deliveries[-1].event_id)
    assert again.status == 200
    assert [a.code for a in fs.acks] == [500, 200]
    assert len(recorder.messages) == 1


async def test_unacked_events_are_repushed_on_schedule() -> None:
    async with FakeFeishu(client_config=FAST, repush_delays=(0.1, 0.1, 0.1)) as fs:
        fs.add_chat("oc_g", "group")
        recorder = Recorder()
        recorder.fail = True
        client = WsClientThread(fs, recorder.handler()).start()
        try:
            await fs.wait_for(lambda: fs.connected, CONNECT_TIMEOUT)
            await fs.user_message("oc_g", "ou_alice", "retry me")
            await fs.wait_for(lambda: len(fs.acks) >= 2, 5.0)
            recorder.fail = False
            await fs.wait_for(lambda: any(a.code == 200 for a in fs.acks), 5.0)
            event_ids = {d.event_id for d in fs.deliveries}
            assert len(event_ids) == 1 and len(recorder.messages) == 1
            codes = [a.code for a in fs.acks]
            assert codes[-1] == 200 and set(codes[:-1]) == {500}
        finally:
            await asyncio.to_thread(client.stop)


async def test_a_dropped_connection_is_rebuilt(
    connected: tuple[FakeFeishu, Recorder, WsClientThread],
) -> None:
    fs, recorder, _ = connected
    await fs.drop_connection()
    await fs.wait_for(lambda: fs.endpoint_requests == 2 and fs.connected, CONNECT_TIMEOUT)
    await fs.user_message("oc_g", "ou_alice", "after the reconnect")
    assert fs.deliveries[-1].status == 200 and len(recorder.messages) == 1


async def test_a_wrong_secret_stops_the_client(fs: FakeFeishu) -> None:
    client = WsClientThread(fs, Recorder().handler(), app_secret="wrong").start()
    await asyncio.to_thread(client.thread.join, CONNECT_TIMEOUT)
    assert not client.thread.is_alive()
    assert isinstance(client.error, ClientException) and client.error.code == 10014
    assert fs.endpoint_requests == 1 and not fs.connected


@pytest.mark.parametrize(
    ("status", "auth_code"), [(514, 1000040350), (403, None)], ids=["limit", "forbidden"]
)
async def test_a_refused_handshake_stops_the_client(
    fs: FakeFeishu, status: int, auth_code: int | None
) -> None:
    fs.reject_handshake(status, "no more", auth_code)
    client = WsClientThread(fs, Recorder().handler()).start()
    await asyncio.to_thread(client.thread.join, CONNECT_TIMEOUT)
    assert not client.thread.is_alive()
    assert isinstance(client.error, ClientException) and client.error.code == status


async def test_a_busy_endpoint_is_retried(
    connected: tuple[FakeFeishu, Recorder, WsClientThread],
) -> None:
    # (connected first: before its first ClientConfig the SDK waits up to 30 s of jitter)
    fs, recorder, _ = connected
    fs.reject_connections(1, "system busy")
    await fs.drop_connection()
    await fs.wait_for(lambda: fs.endpoint_requests >= 3, CONNECT_TIMEOUT)
    assert not fs.connected
    fs.reject_connections(None)
    await fs.wait_for(lambda: fs.connected, CONNECT_TIMEOUT)
    await fs.user_message("oc_g", "ou_alice", "back")
    assert len(recorder.messages) == 1


async def test_a_muted_fake_answers_no_pings_at_either_level(fs: FakeFeishu) -> None:
    async with aiohttp.ClientSession() as http:
        credentials = {"AppID": fs.app_id, "AppSecret": fs.app_secret}
        async with http.post(fs.base_url + "/callback/ws/endpoint", json=credentials) as answer:
            endpoint = (await answer.json())["data"]
        assert set(endpoint["ClientConfig"]) == set(FAST)
        async with http.ws_connect(endpoint["URL"], autoping=False) as ws:
            ping = Frame(0, 0, 4242, 0, [("type", "ping")]).encode()
            await ws.send_bytes(ping)
            pong = Frame.decode((await ws.receive(timeout=5)).data)
            assert pong.header("type") == "pong" and pong.method == 0
            assert json.loads(pong.payload or b"") == FAST
            await ws.ping(b"hb")
            assert (await ws.receive(timeout=5)).type == aiohttp.WSMsgType.PONG
            fs.mute()
            await ws.send_bytes(ping)
            await ws.ping(b"hb")
            await fs.wait_for(lambda: fs.pings == 2, 5.0)
            with pytest.raises(TimeoutError):
                await ws.receive(timeout=0.3)
            assert fs.pongs == 1 and fs.connected
            fs.mute(False)
            await ws.send_bytes(ping)
            assert Frame.decode((await ws.receive(timeout=5)).data).header("type") == "pong"
        # a device_id is good for one connection only
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(endpoint["URL"])


async def test_an_abrupt_drop_is_survived(
    connected: tuple[FakeFeishu, Recorder, WsClientThread],
) -> None:
    fs, recorder, _ = connected
    await fs.drop_connection(abrupt=True)
    await fs.wait_for(lambda: fs.endpoint_requests == 2 and fs.connected, CONNECT_TIMEOUT)
    await fs.user_message("oc_g", "ou_alice", "still here")
    assert fs.deliveries[-1].status == 200 and len(recorder.messages) == 1


async def test_an_event_missing_a_fragment_is_never_handled() -> None:
    async with FakeFeishu(client_config=FAST, limits=Limits(ack_seconds=0.5)) as fs:
        fs.add_chat("oc_g", "group")
        recorder = Recorder()
        client = WsClientThread(fs, recorder.handler()).start()
        try:
            await fs.wait_for(lambda: fs.connected, CONNECT_TIMEOUT)
            payload = fs.prepare_user_message("oc_g", "ou_alice", "split " * 100)
            lost = await fs.deliver(payload, fragments=3, lose_fragment=1)
            assert lost.status is None and fs.acks == []
            again = await fs.repush(lost.event_id, fragments=3)
            assert again.status == 200 and len(recorder.messages) == 1
        finally:
            await asyncio.to_thread(client.stop)


async def test_a_connection_past_the_limit_is_refused() -> None:
    async with FakeFeishu(limits=Limits(connections=1)) as fs, aiohttp.ClientSession() as http:
        credentials = {"AppID": fs.app_id, "AppSecret": fs.app_secret}
        async with http.post(fs.base_url + "/callback/ws/endpoint", json=credentials) as answer:
            url = (await answer.json())["data"]["URL"]
        async with http.ws_connect(url):
            await fs.wait_for(lambda: fs.connection_count == 1, 5.0)
            client = WsClientThread(fs, Recorder().handler()).start()
            await asyncio.to_thread(client.thread.join, CONNECT_TIMEOUT)
            assert not client.thread.is_alive()
            assert isinstance(client.error, ClientException) and client.error.code == 514
            assert fs.connection_count == 1


async def test_a_late_ack_is_recorded_for_its_event() -> None:
    async with FakeFeishu(client_config=FAST, limits=Limits(ack_seconds=0.2)) as fs:
        fs.add_chat("oc_g", "group")
        recorder = Recorder()
        recorder.delay = 0.6
        client = WsClientThread(fs, recorder.handler()).start()
        try:
            await fs.wait_for(lambda: fs.connected, CONNECT_TIMEOUT)
            await fs.user_message("oc_g", "ou_alice", "slow")
            late = fs.deliveries[-1]
            assert late.status is None  # not acked in time: Feishu would push it again
            await fs.wait_for(lambda: len(fs.acks) == 1, 5.0)
            assert fs.acks[0].event_id == late.event_id and fs.acks[0].code == 200
        finally:
            await asyncio.to_thread(client.stop)
