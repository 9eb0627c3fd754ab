"""HTTP: the SSE execute stream (heartbeat, resume, disconnect) and the JSON endpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gateway_kit import ADMIN_TOKEN, HarnessFactory, SseEvent, read_sse

from hotplex.events import agent_event
from hotplex.testing.fakes import ToolCall


def done(event: SseEvent) -> bool:
    return event.event == "done"


def events(stream: list[SseEvent]) -> list[SseEvent]:
    return [e for e in stream if e.comment is None]


async def test_execute_streams_events_as_sse(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        body = {"session_id": "s1", "prompt": "hi", "request_id": "r1"}
        async with h.post("/api/v1/execute", body) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/event-stream")
            assert response.headers["X-Session-Id"] == "s1"
            stream = events(await read_sse(response))  # to the end of the stream
        assert [e.event for e in stream] == [
            "session",
            "text_delta",
            "text_delta",
            "text",
            "usage",
            "done",
        ]
        for e in stream:
            assert e.data is not None
            assert e.id == str(e.data["seq"]) and e.event == e.data["type"]
            assert e.data["session_id"] == "s1" and e.data["request_id"] == "r1"
        assert stream[-1].data is not None and stream[-1].data["data"]["status"] == "ok"


async def test_execute_generates_a_session_id(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        async with h.post("/api/v1/execute", {"prompt": "hi"}) as response:
            generated = response.headers["X-Session-Id"]
            stream = events(await read_sse(response))
        assert len(generated) == 32
        assert {e.data["session_id"] for e in stream if e.data} == {generated}


async def test_heartbeat_and_the_interrupt_endpoint(gateway: HarnessFactory) -> None:
    async with gateway({"sse_heartbeat": 0.05}) as h:
        h.provider.queue_turn(agent_event("status", text="hang"))
        async with h.post("/api/v1/execute", {"session_id": "s1", "prompt": "wait"}) as response:
            pings = await read_sse(response, lambda e: e.comment == "ping")
            assert pings[-1].comment == "ping"
            async with h.post("/api/v1/sessions/s1/interrupt") as answer:
                assert answer.status == 200
                assert await answer.json() == {"session_id": "s1", "interrupted": True}
            stream = await read_sse(response)
        final = events(stream)[-1]
        assert final.event == "done" and final.data is not None
        assert final.data["data"]["status"] == "interrupted"
        async with h.post("/api/v1/sessions/s1/interrupt") as answer:
            assert await answer.json() == {"session_id": "s1", "interrupted": False}


async def test_last_event_id_resumes_the_running_turn(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        h.provider.delay = 0.02
        h.provider.queue_turn(*(agent_event("text", text=f"t{i}") for i in range(15)))
        body = {"session_id": "s1", "prompt": "long"}
        async with h.post("/api/v1/execute", body) as response:
            first = events(await read_sse(response, lambda e: e.event == "text"))
        seen = int(first[-1].id or 0)
        headers = {"Last-Event-ID": str(seen)}
        async with h.post("/api/v1/execute", {"session_id": "s1"}, headers=headers) as response:
            assert response.status == 200
            rest = events(await read_sse(response))
        assert [int(e.id or 0) for e in rest] == list(range(seen + 1, seen + 1 + len(rest)))
        assert rest[-1].event == "done"
        texts = [e.data["data"]["text"] for e in first + rest if e.event == "text" and e.data]
        assert texts == [f"t{i}" for i in range(15)]
        assert h.provider.processes[0].prompts == ["long"]  # no new turn was started
        # resuming a finished turn replays what is left and ends
        headers = {"Last-Event-ID": str(seen + 2)}
        async with h.post("/api/v1/execute", {"session_id": "s1"}, headers=headers) as response:
            tail = events(await read_sse(response))
        assert [e.id for e in tail] == [e.id for e in rest[2:]]


async def test_resume_errors(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        headers = {"Last-Event-ID": "3"}
        async with h.post("/api/v1/execute", {"session_id": "nope"}, headers=headers) as response:
            assert response.status == 404
            assert (await response.json())["data"]["code"] == "unknown_session"
        async with h.post("/api/v1/execute", {}, headers=headers) as response:
            assert response.status == 400
        async with h.post(
            "/api/v1/execute", {"session_id": "s"}, headers={"Last-Event-ID": "x"}
        ) as response:
            assert response.status == 400
            assert (await response.json())["data"]["code"] == "invalid_request"


async def test_a_client_that_goes_away_does_not_stop_the_turn(
    gateway: HarnessFactory, wait_for: Callable[..., Awaitable[None]]
) -> None:
    async with gateway() as h:
        h.provider.delay = 0.02
        h.provider.queue_turn(*(agent_event("text", text=f"t{i}") for i in range(20)))
        async with h.post("/api/v1/execute", {"session_id": "s1", "prompt": "go"}) as response:
            await read_sse(response, lambda e: e.event == "text")
            response.close()  # drop the connection mid-turn
        sid = h.engine_id("alice", "s1")
        await h.until_stored(lambda stored: any(e.type == "done" for e in stored))
        stored = h.storage.of(sid)
        assert stored[-1].type == "done" and stored[-1].data["status"] == "ok"
        assert sum(e.type == "text" for e in stored) == 20
        await wait_for(lambda: h.gateway.open_connections == 0)  # the stream's handler has ended


async def test_bad_bodies(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        async with h.post("/api/v1/execute", data=b"{not json") as response:
            assert response.status == 400
            assert (await response.json())["data"]["code"] == "invalid_json"
        async with h.post("/api/v1/execute", {"session_id": "s1"}) as response:
            assert response.status == 400
            error = await response.json()
            assert error["type"] == "error" and error["data"]["code"] == "invalid_request"
        async with h.post("/api/v1/execute", {"prompt": "x", "session_id": "../x"}) as response:
            assert response.status == 400


async def test_interrupt_endpoint_ownership(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        h.provider.queue_turn(agent_event("status", text="hang"))
        async with h.post("/api/v1/execute", {"session_id": "s1", "prompt": "wait"}) as response:
            await read_sse(response, lambda e: e.event == "session")
            sid = h.engine_id("alice", "s1")
            async with h.post("/api/v1/sessions/nope/interrupt") as answer:
                assert answer.status == 404
                assert (await answer.json())["data"]["code"] == "unknown_session"
            # bob naming the same client id reaches his own (absent) session
            async with h.post("/api/v1/sessions/s1/interrupt", key="bob") as answer:
                assert answer.status == 404
            # bob naming alice's session by its engine id: not his
            async with h.post(f"/api/v1/sessions/{sid}/interrupt", key="bob") as answer:
                assert answer.status == 403
                assert (await answer.json())["data"]["code"] == "not_authorized"
            admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            async with h.post(
                f"/api/v1/sessions/{sid}/interrupt", key=None, headers=admin
            ) as answer:
                assert answer.status == 200 and (await answer.json())["interrupted"] is True
            stream = events(await read_sse(response))
        assert stream[-1].data is not None and stream[-1].data["data"]["status"] == "interrupted"


async def test_permission_endpoint(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        h.provider.queue_turn(ToolCall("Bash", {"command": "ls"}))
        h.provider.queue_turn(ToolCall("Bash", {"command": "ls"}))
        async with h.post("/api/v1/execute", {"session_id": "s1", "prompt": "tool"}) as response:
            (*_, asked) = await read_sse(response, lambda e: e.event == "permission_request")
            assert asked.data is not None
            pid = asked.data["data"]["permission_id"]
            path = f"/api/v1/permissions/{pid}"
            async with h.post("/api/v1/permissions/perm_nope", {"decision": "allow"}) as answer:
                assert answer.status == 404
                assert (await answer.json())["data"]["code"] == "unknown_permission"
            async with h.post(path, {"decision": "allow"}, key="bob") as answer:
                assert answer.status == 403
                assert (await answer.json())["data"]["code"] == "not_authorized"
            async with h.post(path, {"decision": "perhaps"}) as answer:
                assert answer.status == 400
            async with h.post(path, {"decision": "allow", "scope": "session"}) as answer:
                assert answer.status == 200
                assert await answer.json() == {
                    "permission_id": pid,
                    "decision": "allow",
                    "scope": "session",
                    "by": "key:alice",
                }
            async with h.post(path, {"decision": "deny"}) as answer:
                assert answer.status == 409
                assert (await answer.json())["data"]["code"] == "already_decided"
            stream = events(await read_sse(response))
        assert [e.event for e in stream][-3:] == ["permission_decision", "tool_result", "done"]
        # an admin may decide another key's request, and is named as "admin"
        async with h.post("/api/v1/execute", {"session_id": "s2", "prompt": "tool"}) as response:
            (*_, asked) = await read_sse(response, lambda e: e.event == "permission_request")
            assert asked.data is not None
            admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            async with h.post(
                f"/api/v1/permissions/{asked.data['data']['permission_id']}",
                {"decision": "deny", "reason": "no"},
                key=None,
                headers=admin,
            ) as answer:
                assert answer.status == 200
                assert (await answer.json())["by"] == "admin"
            stream = events(await read_sse(response))
        decided = next(e for e in stream if e.event == "permission_decision")
        assert decided.data is not None and decided.data["data"]["by"] == "admin"


async def test_a_reader_that_stalls_is_dropped_without_holding_up_the_turn(
    gateway: HarnessFactory, wait_for: Callable[..., Awaitable[None]]
) -> None:
    async with gateway({"client_queue": 4}) as h:
        blob = "x" * 65536
        h.provider.queue_turn(*(agent_event("text", text=f"{i}{blob}") for i in range(300)))
        async with h.post("/api/v1/execute", {"session_id": "s1", "prompt": "go"}) as response:
            assert response.status == 200  # and never read again
            await wait_for(lambda: h.gateway.slow_disconnects == 1)
        sid = h.engine_id("alice", "s1")
        await h.until_stored(lambda stored: any(e.type == "done" for e in stored))
        assert sum(e.type == "text" for e in h.storage.of(sid)) == 300


async def test_refused_and_busy_prompts(gateway: HarnessFactory) -> None:
    async with gateway(engine={"busy_policy": "reject"}) as h:
        async with h.post("/api/v1/execute", {"session_id": "s1", "prompt": "forbidden"}) as r:
            assert r.status == 403
            error = (await r.json())["data"]
            assert error == {
                "code": "refused",
                "message": "Refused for key:alice on web.",
                "retryable": False,
            }
        h.provider.queue_turn(agent_event("status", text="hang"))
        async with h.post("/api/v1/execute", {"session_id": "s1", "prompt": "wait"}) as running:
            await read_sse(running, lambda e: e.event == "session")
            async with h.post("/api/v1/execute", {"session_id": "s1", "prompt": "more"}) as r:
                assert r.status == 409
                error = (await r.json())["data"]
                assert error["code"] == "session_busy" and error["retryable"] is True
            async with h.post("/api/v1/sessions/s1/interrupt") as r:
                assert r.status == 200
            await read_sse(running)
