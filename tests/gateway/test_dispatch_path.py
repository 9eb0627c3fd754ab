"""The gateway's ``execute`` (WebSocket and SSE) goes through the dispatcher, as a chat
platform's message does: chat commands answer (the agent never sees them) while turns
are still relayed to the client with its ids. (The middleware chain seeing platform
``web`` and the user ``key:<api key name>``: test_sse_api's refused prompt.)"""

from __future__ import annotations

from typing import Any

from gateway_kit import HarnessFactory, frames_until, is_done, is_type, read_sse


def agent_prompts(h: Any) -> list[str]:
    return [p for process in h.provider.processes for p in process.prompts]


async def test_a_chat_command_over_the_websocket_is_answered_not_sent_to_the_agent(
    gateway: HarnessFactory,
) -> None:
    async with gateway() as h:
        ws = await h.ws()
        await ws.send_json(
            {"type": "execute", "session_id": "s1", "prompt": "hi", "request_id": "r1"}
        )
        await frames_until(ws, is_done("s1"))
        await ws.send_json(
            {"type": "execute", "session_id": "s1", "prompt": "/help", "request_id": "r2"}
        )
        (answer,) = await frames_until(ws, is_type("message"))
        assert answer["session_id"] == "s1" and answer["turn_id"] == ""
        assert answer["request_id"] == "r2" and answer["data"]["from"] == "hotplex"
        assert "/status" in answer["data"]["text"] and "/reset" in answer["data"]["text"]
        # the same socket goes on; the agent saw the prompt, never the command
        await ws.send_json({"type": "execute", "session_id": "s1", "prompt": "again"})
        await frames_until(ws, is_done("s1"))
        assert agent_prompts(h) == ["hi", "again"]
        # stored with the session's events, so a replay shows it
        await h.until_stored(lambda events: any(e.type == "message" for e in events))
        (kept,) = [e for e in h.storage.events if e.type == "message"]
        assert kept.session_id == h.engine_id("alice", "s1") and kept.request_id == "r2"


async def test_a_chat_command_over_sse_ends_the_stream_with_its_answer(
    gateway: HarnessFactory,
) -> None:
    async with gateway() as h:
        body = {"session_id": "s2", "prompt": "/status", "request_id": "r1"}
        async with h.post("/api/v1/execute", body) as response:
            assert response.status == 200
            stream = [e for e in await read_sse(response) if e.comment is None]
        assert [e.event for e in stream] == ["message"]
        assert stream[0].data is not None and stream[0].data["session_id"] == "s2"
        assert agent_prompts(h) == []
