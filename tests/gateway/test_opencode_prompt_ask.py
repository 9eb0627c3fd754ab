"""The OpenCode-compatible API and a prompt the WAF asks about: the ask is a permission on
``/event`` at once, answered through the permission routes; the prompt then runs or is
refused."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from gateway_kit import Harness, HarnessFactory, auth, read_sse

ASKED = "append a line: echo hi >> ~/.bashrc"
RULE = "persist.shell_rc"
#: The bound of "at once": far below any approval timeout.
PROMPTLY = 2.0


def agent_prompts(h: Harness) -> list[str]:
    """Every prompt the fake agents received."""
    return [p for process in h.provider.processes for p in process.prompts]


def body(text: str) -> dict[str, Any]:
    return {"parts": [{"type": "text", "text": text}]}


async def create(h: Harness) -> str:
    async with h.client.post("/opencode/session", json={}, headers=auth("alice")) as response:
        assert response.status == 200, await response.text()
        return str((await response.json())["id"])


async def until(
    stream: aiohttp.ClientResponse, kind: str, *, timeout: float = PROMPTLY
) -> list[dict[str, Any]]:
    """The events of an ``/event`` stream up to the first of type ``kind``."""
    events = await read_sse(stream, lambda e: (e.data or {}).get("type") == kind, timeout)
    found = [e.data for e in events if e.data is not None]
    assert found and found[-1]["type"] == kind, f"the stream ended before {kind}"
    return found


def texts(events: list[dict[str, Any]]) -> list[str]:
    parts = [e["properties"]["part"] for e in events if e["type"] == "message.part.updated"]
    return [p["text"] for p in parts if p["type"] == "text" and p.get("time", {}).get("end")]


async def message_decided(
    h: Harness, stream: aiohttp.ClientResponse, sid: str, decision: str
) -> aiohttp.ClientResponse:
    """POST the asked prompt to the synchronous ``message`` route, answer its permission
    with ``decision`` through the legacy reply route, and return the route's response."""
    sending = asyncio.create_task(
        h.client.post(f"/opencode/session/{sid}/message", headers=auth("alice"), json=body(ASKED))
    )
    try:
        asked = (await until(stream, "permission.asked"))[-1]["properties"]
        assert not sending.done()  # it waits for the decision
        async with h.client.post(
            f"/opencode/session/{sid}/permissions/{asked['id']}",
            headers=auth("alice"),
            json={"response": decision},
        ) as response:
            assert response.status == 200
        async with asyncio.timeout(PROMPTLY):
            return await sending
    finally:
        sending.cancel()


async def test_an_asked_prompt_async_is_a_permission_at_once_and_runs_when_allowed(
    gateway: HarnessFactory,
) -> None:
    async with gateway() as h:
        sid = await create(h)
        async with h.client.get("/opencode/event", headers=auth("alice")) as stream:
            await until(stream, "server.connected")
            async with asyncio.timeout(PROMPTLY):  # returns at once, as for any prompt
                async with h.client.post(
                    f"/opencode/session/{sid}/prompt_async", headers=auth("alice"), json=body(ASKED)
                ) as response:
                    assert response.status == 204
            events = await until(stream, "permission.asked")
            legacy, asked = events[-2:]
            assert legacy["type"] == "permission.updated"
            properties = asked["properties"]
            permission_id = properties["id"]
            assert legacy["properties"]["id"] == permission_id
            assert properties["sessionID"] == sid and properties["permission"] == "prompt"
            assert properties["patterns"] == [ASKED] and properties["always"] == []
            assert properties["metadata"]["kind"] == "prompt"
            assert properties["metadata"]["input"] == {"text": ASKED}
            assert properties["metadata"]["reason"].startswith(f"{RULE}:")
            assert agent_prompts(h) == []  # it waits for the decision
            async with h.client.get("/opencode/permission", headers=auth("alice")) as response:
                listed = await response.json()
            assert [(p["id"], p["sessionID"], p["permission"]) for p in listed] == [
                (permission_id, sid, "prompt")
            ]

            async with h.client.post(  # a prompt is allowed once, never for the session
                f"/opencode/permission/{permission_id}/reply",
                headers=auth("alice"),
                json={"reply": "always"},
            ) as response:
                assert response.status == 400
            async with h.client.post(
                f"/opencode/permission/{permission_id}/reply",
                headers=auth("alice"),
                json={"reply": "once"},
            ) as response:
                assert response.status == 200 and await response.json() is True
            events = await until(stream, "session.idle")
        replied = next(e for e in events if e["type"] == "permission.replied")
        assert replied["properties"]["permissionID"] == permission_id
        assert replied["properties"]["reply"] == "once"
        assert texts(events) == [ASKED, f"echo: {ASKED}"]  # the prompt, then the answer
        assert agent_prompts(h) == [ASKED]


async def test_an_asked_message_is_refused_when_rejected(gateway: HarnessFactory) -> None:
    """The synchronous route waits for the decision; the legacy reply route rejects; the
    answer is the refusal, and the agent never saw the prompt."""
    async with gateway() as h:
        sid = await create(h)
        async with h.client.get("/opencode/event", headers=auth("alice")) as stream:
            await until(stream, "server.connected")
            response = await message_decided(h, stream, sid, "reject")
            async with response:
                assert response.status == 403
                refusal = await response.json()
            events = await until(stream, "session.error")
        assert refusal["data"]["code"] == "refused" and RULE in refusal["data"]["message"]
        replied = next(e for e in events if e["type"] == "permission.replied")
        assert replied["properties"]["reply"] == "reject"
        error = events[-1]["properties"]
        assert error["sessionID"] == sid and RULE in error["error"]["data"]["message"]
        assert agent_prompts(h) == []
        # the session stays usable
        async with h.client.post(
            f"/opencode/session/{sid}/message", headers=auth("alice"), json=body("hello")
        ) as response:
            answer = await response.json()
        assert [p["text"] for p in answer["parts"] if p["type"] == "text"] == ["echo: hello"]


async def test_an_asked_message_allowed_answers_the_turn_and_a_rejected_async_one_errors(
    gateway: HarnessFactory,
) -> None:
    async with gateway() as h:
        sid = await create(h)
        async with h.client.get("/opencode/event", headers=auth("alice")) as stream:
            await until(stream, "server.connected")
            response = await message_decided(h, stream, sid, "once")
            async with response:
                assert response.status == 200
                answer = await response.json()
            assert [p["text"] for p in answer["parts"] if p["type"] == "text"] == [f"echo: {ASKED}"]
            await until(stream, "session.idle")

            async with asyncio.timeout(PROMPTLY):
                async with h.client.post(
                    f"/opencode/session/{sid}/prompt_async", headers=auth("alice"), json=body(ASKED)
                ) as response:
                    assert response.status == 204
            asked = (await until(stream, "permission.asked"))[-1]["properties"]
            async with h.client.post(
                f"/opencode/permission/{asked['id']}/reply",
                headers=auth("alice"),
                json={"reply": "reject"},
            ) as response:
                assert response.status == 200
            events = await until(stream, "session.error")
        error = events[-1]["properties"]
        assert error["sessionID"] == sid and error["error"]["data"]["code"] == "refused"
        assert not any(e["type"] == "session.status" for e in events)  # no turn started
        assert agent_prompts(h) == [ASKED]  # only the allowed one


async def test_an_asked_message_nobody_answers_is_refused_at_the_approval_timeout(
    gateway: HarnessFactory,
) -> None:
    async with gateway(security={"approval_timeout": "0.3s"}) as h:
        sid = await create(h)
        async with asyncio.timeout(PROMPTLY):
            async with h.client.post(
                f"/opencode/session/{sid}/message", headers=auth("alice"), json=body(ASKED)
            ) as response:
                assert response.status == 403
                refusal = await response.json()
        assert refusal["data"]["code"] == "refused" and RULE in refusal["data"]["message"]
        assert agent_prompts(h) == []
