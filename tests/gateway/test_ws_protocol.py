"""The WebSocket protocol: execute, interrupt, permissions, subscribe, ping, bad frames."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from gateway_kit import WAIT, HarnessFactory, frames_until, is_done, is_type, read_sse

from hotplex.events import agent_event
from hotplex.testing.fakes import ToolCall


def of(frames: list[dict[str, Any]], session_id: str) -> list[dict[str, Any]]:
    return [f for f in frames if f.get("session_id") == session_id]


async def test_execute_streams_events_with_the_clients_ids(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        ws = await h.ws()
        await ws.send_json(
            {"type": "execute", "session_id": "s1", "prompt": "hi", "request_id": "r1"}
        )
        frames = await frames_until(ws, is_done())
        assert [f["type"] for f in frames] == [
            "session",
            "text_delta",
            "text_delta",
            "text",
            "usage",
            "done",
        ]
        assert all(f["session_id"] == "s1" and f["request_id"] == "r1" for f in frames)
        assert [f["seq"] for f in frames] == list(range(1, 7))
        assert frames[3]["data"] == {"text": "echo: hi"}
        assert frames[-1]["data"]["status"] == "ok"
        # the engine keeps the session under the key's address
        session = h.engine.get(h.engine_id("alice", "s1"))
        assert session is not None and session.address == "web:alice/s1"
        assert session.owner == "key:alice"  # the identity on the dispatcher's path


async def test_execute_without_session_id_gets_a_generated_one(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        ws = await h.ws()
        await ws.send_json({"type": "execute", "prompt": "hi"})
        frames = await frames_until(ws, is_done())
        ids = {f["session_id"] for f in frames}
        assert len(ids) == 1
        (generated,) = ids
        assert len(generated) == 32 and int(generated, 16) >= 0
        assert all("request_id" not in f for f in frames)


async def test_two_sessions_interleave_over_one_socket(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        h.provider.delay = 0.02
        ws = await h.ws()
        await ws.send_json({"type": "execute", "session_id": "a", "prompt": "one two"})
        await ws.send_json({"type": "execute", "session_id": "b", "prompt": "three"})
        frames: list[dict[str, Any]] = []
        async with asyncio.timeout(WAIT):
            while sum(f["type"] == "done" for f in frames) < 2:
                frames += await frames_until(ws, is_type("done"))
        a, b = of(frames, "a"), of(frames, "b")
        assert [f["type"] for f in a][-1] == "done" and [f["type"] for f in b][-1] == "done"
        assert any(f["data"].get("text") == "echo: one two" for f in a)
        assert any(f["data"].get("text") == "echo: three" for f in b)
        # the two turns ran at the same time: b's first event came before a's done
        order = [f["session_id"] for f in frames]
        assert order.index("b") < len(order) - 1 - order[::-1].index("a")
        # each session numbers its own events
        assert [f["seq"] for f in a] == list(range(1, len(a) + 1))
        assert [f["seq"] for f in b] == list(range(1, len(b) + 1))


async def test_interrupt_stops_the_turn(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        h.provider.queue_turn(
            agent_event("text", text="working"), agent_event("status", text="hang")
        )
        ws = await h.ws()
        await ws.send_json({"type": "execute", "session_id": "s1", "prompt": "go"})
        await frames_until(ws, is_type("text"))
        await ws.send_json({"type": "interrupt", "session_id": "s1"})
        frames = await frames_until(ws, is_done())
        assert frames[-1]["data"]["status"] == "interrupted"
        await ws.send_json({"type": "interrupt", "session_id": "nope", "request_id": "q"})
        (error,) = await frames_until(ws, is_type("error"))
        assert error == {
            "type": "error",
            "request_id": "q",
            "data": {
                "code": "unknown_session",
                "message": "No session 'nope'.",
                "retryable": False,
            },
        }


async def test_permission_allow_then_deny(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        h.provider.queue_turn(ToolCall("Bash", {"command": "ls"}, output="a.txt"))
        h.provider.queue_turn(ToolCall("Bash", {"command": "rm x"}))
        ws = await h.ws()
        for decision, is_error in (("allow", False), ("deny", True)):
            await ws.send_json({"type": "execute", "session_id": "s1", "prompt": "tool"})
            (*_, request) = await frames_until(ws, is_type("permission_request"))
            assert request["session_id"] == "s1"
            assert request["data"]["tool"] == "Bash" and request["data"]["scopes"] == [
                "once",
                "session",
            ]
            await ws.send_json(
                {
                    "type": "permission_response",
                    "permission_id": request["data"]["permission_id"],
                    "decision": decision,
                    "reason": "tested",
                }
            )
            frames = await frames_until(ws, is_done())
            decided = next(f for f in frames if f["type"] == "permission_decision")
            assert decided["data"] == {
                "permission_id": request["data"]["permission_id"],
                "decision": decision,
                "scope": "once",
                "by": "key:alice",
                "reason": "tested",
            }
            result = next(f for f in frames if f["type"] == "tool_result")
            assert result["data"]["is_error"] is is_error
            assert frames[-1]["data"]["status"] == "ok"


async def test_permission_from_another_key_and_twice(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        h.provider.queue_turn(ToolCall("Bash", {"command": "ls"}))
        alice, bob = await h.ws("alice"), await h.ws("bob")
        await alice.send_json({"type": "execute", "session_id": "s1", "prompt": "tool"})
        (*_, request) = await frames_until(alice, is_type("permission_request"))
        answer = {
            "type": "permission_response",
            "permission_id": request["data"]["permission_id"],
            "decision": "allow",
            "request_id": "p1",
        }
        await bob.send_json(answer)
        (error,) = await frames_until(bob, is_type("error"))
        assert error["request_id"] == "p1" and error["data"]["code"] == "not_authorized"
        await alice.send_json(answer)
        await frames_until(alice, is_done())
        await alice.send_json(answer)
        (error,) = await frames_until(alice, is_type("error"))
        assert error["data"]["code"] == "already_decided" and error["request_id"] == "p1"
        await alice.send_json({**answer, "permission_id": "perm_nope"})
        (error,) = await frames_until(alice, is_type("error"))
        assert error["data"]["code"] == "unknown_permission"


async def test_subscribe_replays_stored_events_then_live(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        a = await h.ws()
        await a.send_json({"type": "execute", "session_id": "s1", "prompt": "first"})
        first = await frames_until(a, is_done())
        sid = h.engine_id("alice", "s1")
        await h.until_stored(lambda events: any(e.type == "done" for e in events))
        b = await h.ws()
        await b.send_json({"type": "subscribe", "session_id": "s1", "since_seq": 2})
        replayed = await frames_until(b, is_done())
        # storage keeps every event but text_delta (the complete text event follows it)
        stored = [f["seq"] for f in first if f["seq"] > 2 and f["type"] != "text_delta"]
        assert [f["seq"] for f in replayed] == stored
        assert all(f["session_id"] == "s1" for f in replayed)
        # live: a second turn reaches the subscriber, numbered on, nothing twice
        await a.send_json(
            {"type": "execute", "session_id": "s1", "prompt": "second", "request_id": "r2"}
        )
        second = await frames_until(a, is_done())
        live = await frames_until(b, is_done())
        assert live == second
        assert [f["seq"] for f in replayed + live] == stored + [f["seq"] for f in second]
        assert all(f["request_id"] == "r2" for f in live)
        assert h.engine.get(sid) is not None


async def test_subscribe_during_a_turn_has_no_gap(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        h.provider.delay = 0.01
        h.provider.queue_turn(*(agent_event("text", text=f"t{i}") for i in range(40)))
        a = await h.ws()
        await a.send_json({"type": "execute", "session_id": "s1", "prompt": "long"})
        await frames_until(a, lambda f: f["seq"] >= 10)
        b = await h.ws()
        await b.send_json({"type": "subscribe", "session_id": "s1"})
        frames = await frames_until(b, is_done())
        assert [f["seq"] for f in frames] == list(range(1, frames[-1]["seq"] + 1))
        texts = [f["data"]["text"] for f in frames if f["type"] == "text"]
        assert texts == [f"t{i}" for i in range(40)]


async def test_subscribe_and_execute_on_one_socket_send_each_event_once(
    gateway: HarnessFactory,
) -> None:
    async with gateway() as h:
        ws = await h.ws()
        await ws.send_json({"type": "execute", "session_id": "s1", "prompt": "first"})
        await frames_until(ws, is_done())
        await h.until_stored(lambda events: any(e.type == "done" for e in events))
        await ws.send_json({"type": "subscribe", "session_id": "s1", "since_seq": 6})
        await ws.send_json({"type": "execute", "session_id": "s1", "prompt": "again"})
        frames = await frames_until(ws, is_done())
        assert [f["seq"] for f in frames] == list(range(7, 7 + len(frames)))


async def test_subscribe_to_an_unknown_session(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        ws = await h.ws()
        await ws.send_json({"type": "subscribe", "session_id": "nope", "request_id": "s"})
        (error,) = await frames_until(ws, is_type("error"))
        assert error["data"]["code"] == "unknown_session" and error["request_id"] == "s"


async def test_subscribe_without_storage_says_the_replay_is_missing(
    gateway: HarnessFactory,
) -> None:
    async with gateway(storage=False) as h:
        ws = await h.ws()
        await ws.send_json({"type": "execute", "session_id": "s1", "prompt": "first"})
        await frames_until(ws, is_done())
        other = await h.ws()
        await other.send_json({"type": "subscribe", "session_id": "s1", "since_seq": 0})
        (error,) = await frames_until(other, is_type("error"))
        assert error["data"]["code"] == "replay_unavailable"
        await ws.send_json({"type": "execute", "session_id": "s1", "prompt": "live"})
        live = await frames_until(other, is_done())
        assert live[0]["seq"] == 7


async def test_a_failing_storage_is_an_error_frame(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        ws = await h.ws()
        await ws.send_json({"type": "execute", "session_id": "s1", "prompt": "first"})
        await frames_until(ws, is_done())
        h.storage.broken = True
        await ws.send_json({"type": "subscribe", "session_id": "s1", "request_id": "sub"})
        (error,) = await frames_until(ws, is_type("error"))
        assert error["request_id"] == "sub"
        assert error["data"]["code"] == "storage_unavailable" and error["data"]["retryable"]
        await ws.send_json({"type": "subscribe", "session_id": "gone"})
        (error,) = await frames_until(ws, is_type("error"))
        assert error["data"]["code"] == "storage_unavailable"


async def test_ping_pong(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        ws = await h.ws()
        await ws.send_json({"type": "ping"})
        assert await ws.receive_json(timeout=WAIT) == {"type": "pong"}
        await ws.send_json({"type": "ping", "request_id": "x"})
        assert await ws.receive_json(timeout=WAIT) == {"type": "pong", "request_id": "x"}


async def test_bad_frames_get_error_frames_and_the_socket_stays_usable(
    gateway: HarnessFactory,
) -> None:
    async with gateway() as h:
        ws = await h.ws()
        cases: list[tuple[str | bytes, str]] = [
            ("not json {", "invalid_json"),
            ("[1, 2]", "invalid_json"),
            (b"\x00\x01", "invalid_json"),
            ('{"type": "nope"}', "unknown_type"),
            ('{"prompt": "no type"}', "unknown_type"),
            ('{"type": "execute"}', "invalid_request"),
            ('{"type": "execute", "prompt": ""}', "invalid_request"),
            ('{"type": "execute", "prompt": "x", "session_id": "bad id!"}', "invalid_request"),
            (
                '{"type": "execute", "prompt": "x", "session_id": "' + "a" * 129 + '"}',
                "invalid_request",
            ),
            ('{"type": "interrupt"}', "invalid_request"),
            ('{"type": "permission_response", "decision": "allow"}', "invalid_request"),
            (
                '{"type": "permission_response", "permission_id": "p", "decision": "maybe"}',
                "invalid_request",
            ),
            ('{"type": "subscribe", "session_id": "s", "since_seq": -1}', "invalid_request"),
        ]
        for raw, code in cases:
            if isinstance(raw, bytes):
                await ws.send_bytes(raw)
            else:
                await ws.send_str(raw)
            frame = await ws.receive_json(timeout=WAIT)
            assert frame["type"] == "error" and frame["data"]["code"] == code, (raw, frame)
            assert "Traceback" not in json.dumps(frame)
        await ws.send_json({"type": "ping"})
        assert await ws.receive_json(timeout=WAIT) == {"type": "pong"}
        await ws.send_json({"type": "execute", "session_id": "s1", "prompt": "still fine"})
        assert (await frames_until(ws, is_done()))[-1]["data"]["status"] == "ok"


async def test_a_silent_peer_is_closed_by_the_heartbeat(gateway: HarnessFactory) -> None:
    async with gateway({"ws_heartbeat": 0.1}) as h:
        ws = await h.ws(autoping=False)
        async with asyncio.timeout(WAIT):
            while (message := await ws.receive()).type is aiohttp.WSMsgType.PING:
                pass
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_binary_frames_carry_json_too(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        ws = await h.ws()
        await ws.send_bytes(b'{"type": "ping"}')
        assert await ws.receive_json(timeout=WAIT) == {"type": "pong"}


async def test_shutdown_closes_clients_going_away(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        h.provider.queue_turn(agent_event("status", text="hang"))
        ws = await h.ws()
        async with h.post("/api/v1/execute", {"session_id": "s1", "prompt": "wait"}) as response:
            await read_sse(response, lambda e: e.event == "session")
            closing = asyncio.create_task(h.client.server.close())
            message = await ws.receive(timeout=WAIT)
            assert message.type is aiohttp.WSMsgType.CLOSE
            assert message.data == aiohttp.WSCloseCode.GOING_AWAY
            await read_sse(response)  # the stream ends
            await asyncio.wait_for(closing, WAIT)
        assert h.gateway.open_connections == 0
