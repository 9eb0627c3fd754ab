"""Agent output with a lone surrogate (half of an emoji, as a JSON ``\\ud83d`` escape in the
agent's stream decodes to) reaches every client as valid UTF-8 text: U+FFFD in its place."""

from __future__ import annotations

import json
from typing import Any

from gateway_kit import HarnessFactory, auth, frames_until, is_done, read_sse

from hotplex.events import agent_event
from hotplex.gateway.frames import dumps
from hotplex.testing.fakes import Step

LONE = json.loads('"half \\ud83d of a pair, and \\udc00 too"')  # as an agent's JSON decodes
SHOWN = "half \ufffd of a pair, and \ufffd too"


def turn(prompt: str) -> list[Step]:
    return [agent_event("text_delta", text=LONE), agent_event("text", text=LONE)]


def test_frames_always_encode() -> None:
    text = dumps({"text": LONE, "pair": "\ud83d\ude00"})
    assert json.loads(text.encode("utf-8")) == {"text": SHOWN, "pair": "\U0001f600"}


async def test_websocket_and_replay(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        h.provider.default = turn
        ws = await h.ws()
        await ws.send_json({"type": "execute", "session_id": "s1", "prompt": "x"})
        frames = await frames_until(ws, is_done("s1"))
        deltas = [f["data"]["text"] for f in frames if f["type"] in ("text_delta", "text")]
        assert deltas == [SHOWN, SHOWN]
        # the stored copy replays the same way
        await h.until_stored(lambda events: any(e.type == "done" for e in events))
        late = await h.ws()
        await late.send_json({"type": "subscribe", "session_id": "s1", "since_seq": 0})
        frames = await frames_until(late, is_done("s1"))
        assert [f["data"]["text"] for f in frames if f["type"] == "text"] == [SHOWN]


async def test_sse(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        h.provider.default = turn
        async with h.post("/api/v1/execute", {"session_id": "s2", "prompt": "x"}) as response:
            events = await read_sse(response)
        texts = [e.data["data"]["text"] for e in events if e.event == "text" and e.data]
        assert texts == [SHOWN]
        assert events[-1].event == "done"


async def test_opencode_event_stream(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        h.provider.default = turn
        headers = auth("alice")
        async with h.client.post("/opencode/session", json={}, headers=headers) as response:
            sid = (await response.json())["id"]

        def idle(event: Any) -> bool:
            return bool(event.data and event.data.get("type") == "session.idle")

        async with h.client.get("/opencode/event", headers=headers) as stream:
            async with h.client.post(
                f"/opencode/session/{sid}/prompt_async",
                headers=headers,
                json={"parts": [{"type": "text", "text": "x"}]},
            ) as response:
                assert response.status == 204
            events = await read_sse(stream, idle)
        texts = [
            e.data["properties"]["part"].get("text")
            for e in events
            if e.data and e.data["type"] == "message.part.updated"
        ]
        assert SHOWN in texts, texts
