"""The OpenCode-compatible API (``/opencode``): the official ``@opencode-ai/sdk`` client,
unmodified, drives HotPlex; then each route's bad inputs through a real aiohttp client."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from gateway_kit import ADMIN_TOKEN, KEYS, WAIT, Harness, HarnessFactory, SseEvent, auth, read_sse

from hotplex.events import agent_event
from hotplex.testing.fakes import ToolCall

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "node_modules" / "@opencode-ai" / "sdk" / "package.json"
FLOW = Path(__file__).with_name("opencode_sdk_flow.mjs")


def basic(key: str) -> dict[str, str]:
    token = base64.b64encode(f"opencode:{key}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def create(h: Harness, key: str = "alice") -> dict[str, Any]:
    async with h.client.post("/opencode/session", json={}, headers=auth(key)) as response:
        assert response.status == 200, await response.text()
        return dict(await response.json())


async def read_numbered(
    response: aiohttp.ClientResponse, until: str, count: int = 1
) -> list[tuple[int | None, dict[str, Any]]]:
    """``(id, event)`` of an ``/event`` stream (``/global/event`` frames as they come)
    until ``count`` events of type ``until``."""
    seen = 0

    def stop(event: SseEvent) -> bool:
        nonlocal seen
        data = event.data or {}
        seen += data.get("payload", data).get("type") == until
        return seen >= count

    events = await read_sse(response, stop)
    assert seen >= count, f"the stream ended before {count} {until} events"
    return [(int(e.id) if e.id else None, e.data) for e in events if e.data is not None]


async def read_events(
    response: aiohttp.ClientResponse, until: str, count: int = 1
) -> list[dict[str, Any]]:
    """The events of an ``/event`` stream until ``count`` events of type ``until``."""
    return [event for _, event in await read_numbered(response, until, count)]


def test_the_sdk_is_the_pinned_version() -> None:
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]["@opencode-ai/sdk"]
    opencode = json.loads((ROOT / "package.json").read_text())["dependencies"]["opencode-ai"]
    assert pinned == opencode  # the SDK released with the OpenCode the provider drives
    assert json.loads(SDK.read_text())["version"] == pinned


async def test_the_official_sdk_client_drives_hotplex(gateway: HarnessFactory) -> None:
    node = shutil.which("node")
    assert node is not None and SDK.is_file(), "run `make setup` (installs node_modules)"
    async with gateway() as h:
        h.provider.queue_turn(  # the synchronous prompt
            agent_event("text_delta", text="echo: hello "),
            agent_event("text_delta", text="from the sdk"),
            agent_event("text", text="echo: hello from the sdk"),
            agent_event(
                "usage",
                input_tokens=4,
                output_tokens=6,
                cache_read_tokens=1,
                cache_write_tokens=0,
                cost_usd=0.0012,
                context_used=0,
                context_window=1000,
            ),
        )
        h.provider.queue_turn(  # the asynchronous one, with a tool call to approve
            ToolCall("Bash", {"command": "make test"}, output="all green"),
            agent_event("text", text="the tests pass"),
        )
        base = str(h.client.make_url("/opencode"))
        proc = await asyncio.create_subprocess_exec(
            node,
            str(FLOW),
            base,
            KEYS["alice"],
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, (out.decode()[-2000:], err.decode()[-2000:])
        report = json.loads(out)
        engine_id = h.engine_id("alice", report["session"]["id"])
        assert h.engine.get(engine_id) is not None  # alice's own gateway session

    assert report["strangerStatus"] == 401
    session = report["session"]
    assert session["id"].startswith("ses_") and session["title"] == "sdk flow"
    assert report["got"]["id"] == session["id"] and session["id"] in report["listed"]
    sync = report["sync"]
    assert sync["info"]["role"] == "assistant" and sync["info"]["finish"] == "stop"
    assert sync["info"]["tokens"]["input"] == 4 and sync["info"]["tokens"]["output"] == 6
    assert sync["info"]["cost"] == pytest.approx(0.0012)
    texts = [p["text"] for p in sync["parts"] if p["type"] == "text"]
    assert texts == ["echo: hello from the sdk"]
    assert [p["type"] for p in sync["parts"]] == ["step-start", "text", "step-finish"]
    assert report["deltas"][:2] == ["echo: hello ", "from the sdk"]
    assert report["asyncStatus"] == 204
    asked = report["asked"]
    assert asked["type"] == "Bash" and asked["pattern"] == ["make test"]
    assert asked["sessionID"] == session["id"]
    assert report["replied"]["response"] == "once"
    assert report["completedTool"]["state"]["output"] == "all green"
    types = report["eventTypes"]
    assert types[0] == "server.connected"
    assert types.count("session.idle") == 2 and "permission.asked" in types
    history = report["messages"]
    assert [m["info"]["role"] for m in history] == ["user", "assistant"] * 2
    assert history[0]["parts"][0]["text"] == "hello from the sdk"
    assert history[2]["parts"][0]["text"] == "run a tool"
    assert [p["text"] for p in history[3]["parts"] if p["type"] == "text"] == ["the tests pass"]
    assert report["missing"] == 404


async def test_auth_ownership_and_bad_input(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        async with h.client.get("/opencode/session") as response:
            assert response.status == 401
        async with h.client.get("/opencode/session", headers=basic("nope")) as response:
            assert response.status == 401
        async with h.client.get("/opencode/session", headers=basic(KEYS["bob"])) as response:
            assert response.status == 200 and await response.json() == []
        session = await create(h)
        sid = session["id"]
        # bob may not see, prompt or delete alice's session; an admin may look at it
        for method, path in [
            ("GET", f"/opencode/session/{sid}"),
            ("POST", f"/opencode/session/{sid}/message"),
            ("DELETE", f"/opencode/session/{sid}"),
        ]:
            async with h.client.request(method, path, headers=auth("bob"), json={}) as response:
                assert response.status == 403, path
                assert (await response.json())["data"]["code"] == "not_authorized"
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with h.client.get(f"/opencode/session/{sid}", headers=admin) as response:
            assert response.status == 200
        async with h.client.get("/opencode/session", headers=auth("bob")) as response:
            assert await response.json() == []

        bad_bodies = {
            "not json": b"{nope",
            "no parts": {"parts": []},
            "file part": {"parts": [{"type": "file", "url": "file:///etc/passwd"}]},
            "noReply": {"parts": [{"type": "text", "text": "x"}], "noReply": True},
            "tools off": {"parts": [{"type": "text", "text": "x"}], "tools": {"bash": False}},
            "empty": {"parts": [{"type": "text", "text": "  "}]},
        }
        for name, body in bad_bodies.items():
            kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
            async with h.client.post(
                f"/opencode/session/{sid}/message", headers=auth("alice"), **kwargs
            ) as response:
                assert response.status == 400, name
                answer = await response.json()
                assert answer["name"] == "BadRequestError" and answer["data"]["message"], name
        assert h.provider.processes == []  # nothing reached an agent

        big = {"parts": [{"type": "text", "text": "x" * 2_000_000}]}
        async with h.client.post(
            f"/opencode/session/{sid}/message", headers=auth("alice"), json=big
        ) as response:
            assert response.status == 413
        async with h.client.get("/opencode/session/ses_unknown", headers=auth("alice")) as r:
            assert r.status == 404 and (await r.json())["name"] == "NotFoundError"
        async with h.client.get("/opencode/file/content", headers=auth("alice")) as r:
            assert r.status == 404 and "not part of" in (await r.json())["data"]["message"]
        reply = f"/opencode/session/{sid}/permissions/perm_nope"
        async with h.client.post(reply, headers=auth("alice"), json={"response": "maybe"}) as r:
            assert r.status == 400
        async with h.client.post(reply, headers=auth("alice"), json={"response": "once"}) as r:
            assert r.status == 404


async def test_abort_and_the_global_stream(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        h.provider.queue_turn(
            agent_event("text_delta", text="working"), agent_event("status", text="hang")
        )
        sid = (await create(h))["id"]
        async with h.client.get("/opencode/global/event", headers=auth("alice")) as stream:
            await read_events(stream, "server.connected")
            async with h.client.post(
                f"/opencode/session/{sid}/prompt_async",
                headers=auth("alice"),
                json={"parts": [{"type": "text", "text": "long job"}]},
            ) as response:
                assert response.status == 204
            frames = await read_events(stream, "message.part.updated", count=3)
            assert all(f["directory"] and f["payload"]["type"] for f in frames)
            async with h.client.get("/opencode/session/status", headers=auth("alice")) as r:
                assert await r.json() == {sid: {"type": "busy"}}
            async with h.client.post(
                f"/opencode/session/{sid}/abort", headers=auth("alice")
            ) as response:
                assert await response.json() is True
            frames = await read_events(stream, "session.idle")
        payloads = [f["payload"] for f in frames]
        errors = [p for p in payloads if p["type"] == "session.error"]
        assert errors[0]["properties"]["error"]["name"] == "MessageAbortedError"
        final = [p for p in payloads if p["type"] == "message.updated"][-1]["properties"]["info"]
        assert final["error"]["name"] == "MessageAbortedError"


async def test_a_client_that_goes_away_loses_nothing(gateway: HarnessFactory) -> None:
    """The sync prompt's caller disconnects mid-turn: the turn finishes and is in the
    history; another key's /event stream never sees it."""
    async with gateway() as h:
        h.provider.delay = 0.05
        sid = (await create(h))["id"]
        async with h.client.get("/opencode/event", headers=auth("bob")) as bobs:
            await read_events(bobs, "server.connected")
            session = aiohttp.ClientSession()
            try:
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await session.post(
                            h.client.make_url(f"/opencode/session/{sid}/message"),
                            headers=auth("alice"),
                            json={"parts": [{"type": "text", "text": "keep going"}]},
                        )
            finally:
                await session.close()
            async with asyncio.timeout(WAIT):
                while True:
                    async with h.client.get(
                        f"/opencode/session/{sid}/message", headers=auth("alice")
                    ) as response:
                        history = await response.json()
                    if history:
                        break
                    await asyncio.sleep(0.02)
            assert history[0]["parts"][0]["text"] == "keep going"
            texts = [p["text"] for p in history[1]["parts"] if p["type"] == "text"]
            assert texts == ["echo: keep going"]
            # bob's stream shows his own new session, and nothing of alice's before it
            async with h.client.post("/opencode/session", json={}, headers=auth("bob")) as r:
                bobs_id = (await r.json())["id"]
            frames = await read_events(bobs, "session.created")
        assert frames[-1]["properties"]["info"]["id"] == bobs_id
        assert all(f["type"] in ("server.connected", "server.heartbeat") for f in frames[:-1])


async def test_a_stream_that_comes_back_misses_nothing(gateway: HarnessFactory) -> None:
    """A client whose ``/event`` stream dropped reconnects with ``Last-Event-ID`` (the
    SDK's client does): it gets what it missed, in order, then live events; another key
    resuming from 0 gets none of it."""
    async with gateway() as h:
        sid = (await create(h))["id"]
        prompt = {"parts": [{"type": "text", "text": "one"}]}
        url = f"/opencode/session/{sid}/message"
        async with h.client.get("/opencode/event", headers=auth("alice")) as stream:
            await read_numbered(stream, "server.connected")
            async with h.client.post(url, headers=auth("alice"), json=prompt) as response:
                assert response.status == 200
            first = await read_numbered(stream, "session.idle")
        last = first[-1][0]
        assert last is not None and all(n is not None for n, _ in first)
        # the stream is gone; a turn runs meanwhile
        prompt["parts"][0]["text"] = "two"
        async with h.client.post(url, headers=auth("alice"), json=prompt) as response:
            missed_answer = await response.json()
        resumed_headers = {**auth("alice"), "Last-Event-ID": str(last)}
        async with h.client.get("/opencode/event", headers=resumed_headers) as stream:
            missed = await read_numbered(stream, "session.idle")
            numbers = [n for n, _ in missed[1:]]  # after server.connected (no id)
            assert numbers == list(range(last + 1, last + 1 + len(numbers)))
            kinds = [e["type"] for _, e in missed]
            assert kinds[0] == "server.connected" and kinds[-1] == "session.idle"
            texts = [
                e["properties"]["part"].get("text")
                for _, e in missed
                if e["type"] == "message.part.updated" and e["properties"]["part"]["type"] == "text"
            ]
            assert "two" in texts and "echo: two" in texts  # the prompt, then the answer
            assert missed_answer["info"]["id"] in {
                e["properties"]["info"]["id"] for _, e in missed if e["type"] == "message.updated"
            }
            # then live: a third turn arrives numbered on, nothing twice
            prompt["parts"][0]["text"] = "three"
            async with h.client.post(url, headers=auth("alice"), json=prompt) as response:
                assert response.status == 200
            live = await read_numbered(stream, "session.idle")
            assert live[0][0] == numbers[-1] + 1
        bobs_headers = {**auth("bob"), "Last-Event-ID": "0"}
        async with h.client.post("/opencode/session", json={}, headers=auth("bob")) as r:
            assert r.status == 200
        async with h.client.get("/opencode/event", headers=bobs_headers) as stream:
            frames = await read_numbered(stream, "session.created")
        assert [e["type"] for _, e in frames] == ["server.connected", "session.created"]
        bad = {**auth("alice"), "Last-Event-ID": "evt_abc"}
        async with h.client.get("/opencode/event", headers=bad) as response:
            assert response.status == 400
