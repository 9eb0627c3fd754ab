"""A prompt the WAF asks about: a ``permission_request`` (kind ``prompt``) at once, decided
like a tool call, while the connection and the other sessions go on being served."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from gateway_kit import WAIT, HarnessFactory, frames_until, is_done, is_type, read_sse

from hotplex.config import AllowTools, RouteTo
from hotplex.events import agent_event
from hotplex.gateway.clients import Caller
from hotplex.gateway.frames import GatewayError

ASKED = "append a line: echo hi >> ~/.bashrc"
RULE = "persist.shell_rc"
#: The bound of "at once": far below any approval timeout.
PROMPTLY = 2.0


def agent_prompts(h: Any) -> list[str]:
    """Every prompt the fake agents received."""
    return [p for process in h.provider.processes for p in process.prompts]


def execute(session_id: str, prompt: str, request_id: str) -> dict[str, Any]:
    return {"type": "execute", "session_id": session_id, "prompt": prompt, "request_id": request_id}


def answer(permission_id: str, decision: str) -> dict[str, Any]:
    return {"type": "permission_response", "permission_id": permission_id, "decision": decision}


def is_request(session_id: str) -> Any:
    return lambda f: f["type"] == "permission_request" and f["session_id"] == session_id


async def test_an_asked_prompt_is_a_request_at_once_and_the_socket_serves_another_session(
    gateway: HarnessFactory,
) -> None:
    async with gateway() as h:
        ws = await h.ws()
        await ws.send_json(execute("s1", ASKED, "r1"))
        await ws.send_json(execute("s2", "hello", "r2"))
        seen: list[dict[str, Any]] = []

        def both(frame: dict[str, Any]) -> bool:  # the request and the other turn's end
            seen.append(frame)
            return any(map(is_request("s1"), seen)) and any(map(is_done("s2"), seen))

        frames = await frames_until(ws, both, timeout=PROMPTLY)
        request = next(f for f in frames if is_request("s1")(f))
        assert request["turn_id"] == "" and request["request_id"] == "r1"
        data = request["data"]
        assert data["kind"] == "prompt" and data["tool"] == "prompt"
        assert data["input"] == {"text": ASKED}
        assert data["reason"].startswith(f"{RULE}:") and data["scopes"] == ["once"]
        texts = [f["data"]["text"] for f in frames if f["type"] == "text"]
        assert texts == ["echo: hello"]  # the other session's turn ran meanwhile
        assert agent_prompts(h) == ["hello"]  # and the asked one has not reached an agent
        pending = h.engine.approvals.get(data["permission_id"])
        assert pending is not None and pending.kind == "prompt"

        await ws.send_json(answer(data["permission_id"], "allow"))
        frames = await frames_until(ws, is_done("s1"))
        decided = next(f for f in frames if f["type"] == "permission_decision")
        assert decided["data"]["decision"] == "allow" and decided["data"]["by"] == "key:alice"
        assert [f["data"]["text"] for f in frames if f["type"] == "text"] == [f"echo: {ASKED}"]
        assert agent_prompts(h) == ["hello", ASKED]
        turn = [f for f in frames if f["turn_id"]]
        assert turn[0]["request_id"] == "r1" and turn[0]["seq"] > decided["seq"]


async def test_a_denied_prompt_is_refused_and_never_reaches_the_agent(
    gateway: HarnessFactory,
) -> None:
    async with gateway() as h:
        ws = await h.ws()
        await ws.send_json(execute("s1", ASKED, "r1"))
        (request,) = await frames_until(ws, is_type("permission_request"), timeout=PROMPTLY)
        await ws.send_json(answer(request["data"]["permission_id"], "deny"))
        frames = await frames_until(ws, lambda f: f["type"] == "error")
        decided, refused = frames[-2:]
        assert decided["type"] == "permission_decision" and decided["data"]["decision"] == "deny"
        assert refused["request_id"] == "r1" and refused["data"]["code"] == "refused"
        assert RULE in refused["data"]["message"]
        assert agent_prompts(h) == []
        # the session stays usable
        await ws.send_json(execute("s1", "hello", "r2"))
        await frames_until(ws, is_done("s1"))
        assert agent_prompts(h) == ["hello"]


async def test_a_subscriber_sees_the_request_and_may_decide_it(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        sender, other = await h.ws(), await h.ws()
        await sender.send_json(execute("s1", ASKED, "r1"))
        (request,) = await frames_until(sender, is_type("permission_request"), timeout=PROMPTLY)
        await other.send_json({"type": "subscribe", "session_id": "s1", "since_seq": 0})
        (*_, replayed) = await frames_until(other, is_type("permission_request"))
        assert replayed["seq"] == request["seq"] and replayed["data"]["kind"] == "prompt"
        await other.send_json(answer(request["data"]["permission_id"], "allow"))
        await frames_until(other, is_done("s1"))
        await frames_until(sender, is_done("s1"))
        assert agent_prompts(h) == [ASKED]


async def test_nobody_deciding_denies(gateway: HarnessFactory) -> None:
    async with gateway(security={"approval_timeout": "0.3s"}) as h:
        ws = await h.ws()
        await ws.send_json(execute("s1", ASKED, "r1"))
        frames = await frames_until(ws, is_type("error"))
        decided = next(f for f in frames if f["type"] == "permission_decision")
        assert decided["data"]["by"] == "timeout" and decided["data"]["decision"] == "deny"
        assert frames[-1]["data"]["code"] == "refused" and RULE in frames[-1]["data"]["message"]
        assert agent_prompts(h) == []


async def test_prompts_of_one_session_keep_their_order(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        ws = await h.ws()
        await ws.send_json(execute("s1", ASKED, "r1"))
        await ws.send_json(execute("s1", "hello", "r2"))
        await ws.send_json({"type": "ping", "request_id": "p"})  # the socket reads on
        frames = await frames_until(ws, is_type("pong"), timeout=PROMPTLY)
        request = next(f for f in frames if f["type"] == "permission_request")
        assert agent_prompts(h) == []  # "hello" waits behind the asked prompt
        await ws.send_json(answer(request["data"]["permission_id"], "allow"))
        frames = await frames_until(ws, lambda f: f["type"] == "done" and f["request_id"] == "r2")
        done = [f["request_id"] for f in frames if f["type"] == "done"]
        assert done == ["r1", "r2"] and agent_prompts(h) == [ASKED, "hello"]


async def test_too_many_waiting_prompts_on_one_connection(gateway: HarnessFactory) -> None:
    async with gateway({"ws_max_executes": 2}) as h:
        ws = await h.ws()
        for n in (1, 2, 3):
            await ws.send_json(execute(f"s{n}", ASKED, f"r{n}"))
        frames = await frames_until(ws, is_type("error"), timeout=PROMPTLY)
        assert frames[-1]["request_id"] == "r3"
        assert frames[-1]["data"]["code"] == "too_many_executes"
        assert frames[-1]["data"]["retryable"] is True
        requests = [f for f in frames if f["type"] == "permission_request"]
        await ws.send_json(answer(requests[0]["data"]["permission_id"], "deny"))
        await frames_until(ws, is_type("error"))  # s1 refused: room for one more
        await ws.send_json(execute("s4", "hello", "r4"))
        await frames_until(ws, is_done("s4"))


async def test_sse_streams_the_request_at_once_then_the_turn(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        body = {"session_id": "s1", "prompt": ASKED, "request_id": "r1"}
        async with asyncio.timeout(PROMPTLY):  # the stream starts before the decision
            response = await h.post("/api/v1/execute", body)
        async with response:
            assert response.status == 200
            (*_, asked) = await read_sse(
                response, lambda e: e.event == "permission_request", timeout=PROMPTLY
            )
            assert asked.data is not None and asked.data["data"]["kind"] == "prompt"
            assert asked.data["session_id"] == "s1" and asked.data["request_id"] == "r1"
            # meanwhile another session is served
            async with h.post("/api/v1/execute", {"session_id": "s2", "prompt": "hi"}) as other:
                stream = await read_sse(other, lambda e: e.event == "done")
                assert stream[-1].data is not None
                assert stream[-1].data["data"]["status"] == "ok"
            pid = asked.data["data"]["permission_id"]
            async with h.post(f"/api/v1/permissions/{pid}", {"decision": "allow"}) as decided:
                assert decided.status == 200
            rest = await read_sse(response)
        kinds = [e.event for e in rest if e.event]
        assert kinds[0] == "permission_decision" and kinds[-1] == "done"
        assert agent_prompts(h) == ["hi", ASKED]


async def test_sse_refused_after_the_request_is_an_error_event(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        async with h.post("/api/v1/execute", {"session_id": "s1", "prompt": ASKED}) as response:
            (*_, asked) = await read_sse(
                response, lambda e: e.event == "permission_request", timeout=PROMPTLY
            )
            assert asked.data is not None
            pid = asked.data["data"]["permission_id"]
            async with h.post(f"/api/v1/permissions/{pid}", {"decision": "deny"}) as decided:
                assert decided.status == 200
            rest = [e for e in await read_sse(response) if e.event]
        assert [e.event for e in rest] == ["permission_decision", "error"]
        assert rest[1].data is not None and rest[1].data["data"]["code"] == "refused"
        assert agent_prompts(h) == []


async def test_an_unattended_session_does_not_wait_for_a_person(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        cron = Caller("cron", admin=False)
        started = time.monotonic()
        with pytest.raises(GatewayError) as refused:
            await h.gateway.execute(cron, "job", ASKED, None, policy="deny")
        assert time.monotonic() - started < PROMPTLY  # not approval_timeout (300 s)
        assert refused.value.code == "refused" and RULE in refused.value.message
        assert "unattended" in refused.value.message
        assert h.engine.approvals.pending() == [] and agent_prompts(h) == []
        # allow_tools naming "prompt" lets it through; without it, it is refused
        with pytest.raises(GatewayError):
            await h.gateway.execute(
                cron, "job", ASKED, None, policy=AllowTools(allow_tools=("Read",))
            )
        turn = await h.gateway.execute(
            cron, "job", ASKED, None, policy=AllowTools(allow_tools=("prompt",))
        )
        assert [e.type for e in await turn.collect(WAIT)][-1] == "done"
        assert agent_prompts(h) == [ASKED]
        assert h.engine.approvals.pending() == []
        # a session an earlier execute made unattended stays so for its later prompts
        turn = await h.gateway.execute(cron, "job2", "hello", None, policy="deny")
        await turn.collect(WAIT)
        with pytest.raises(GatewayError) as refused:
            await asyncio.wait_for(h.gateway.execute(cron, "job2", ASKED, None), PROMPTLY)
        assert "unattended" in refused.value.message and h.engine.approvals.pending() == []


async def test_route_to_asks_in_that_conversation(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        cron = Caller("cron", admin=False)
        policy = RouteTo(route_to="slack:C-ops")
        starting = asyncio.create_task(h.gateway.execute(cron, "job", ASKED, None, policy=policy))
        async with asyncio.timeout(PROMPTLY):
            while not h.engine.approvals.pending():
                await asyncio.sleep(0.01)
        (request,) = h.engine.approvals.pending()
        assert request.kind == "prompt" and request.address == "slack:C-ops"
        await h.engine.approvals.decide(request.permission_id, "allow", by="key:cron")
        turn = await asyncio.wait_for(starting, WAIT)
        await turn.collect(WAIT)
        assert agent_prompts(h) == [ASKED]


async def test_interrupt_withdraws_a_waiting_prompt(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        ws = await h.ws()
        await ws.send_json(execute("s1", ASKED, "r1"))
        await frames_until(ws, is_type("permission_request"), timeout=PROMPTLY)
        async with h.post("/api/v1/sessions/s1/interrupt") as response:
            assert response.status == 200 and (await response.json())["interrupted"] is True
        frames = await frames_until(ws, is_type("error"))
        decided = next(f for f in frames if f["type"] == "permission_decision")
        assert decided["data"]["decision"] == "deny" and decided["data"]["reason"] == "interrupted"
        assert frames[-1]["data"]["code"] == "refused" and agent_prompts(h) == []


async def test_a_request_asked_during_a_running_turn_keeps_the_stream_in_order(
    gateway: HarnessFactory,
) -> None:
    async with gateway() as h:
        h.provider.queue_turn(*(agent_event("text_delta", text=f"{n} ") for n in range(400)))
        ws = await h.ws()
        await ws.send_json(execute("s1", "stream a lot", "r1"))
        await frames_until(ws, is_type("text_delta"))
        await ws.send_json(execute("s1", ASKED, "r2"))
        seen: list[dict[str, Any]] = []

        def both(frame: dict[str, Any]) -> bool:  # the request and the running turn's end
            seen.append(frame)
            return any(map(is_request("s1"), seen)) and any(map(is_done("s1"), seen))

        frames = await frames_until(ws, both)
        seqs = [f["seq"] for f in frames]
        assert seqs == sorted(seqs) and seqs == list(range(seqs[0], seqs[-1] + 1))
        assert sum(f["type"] == "text_delta" for f in frames) == 399  # the first came before


async def test_a_sender_that_goes_away_withdraws_its_waiting_prompt(
    gateway: HarnessFactory,
) -> None:
    async with gateway() as h:
        ws = await h.ws()
        await ws.send_json(execute("s1", ASKED, "r1"))
        (request,) = await frames_until(ws, is_type("permission_request"), timeout=PROMPTLY)
        await ws.close()
        await h.until_stored(lambda events: any(e.type == "permission_decision" for e in events))
        (decided,) = [e for e in h.storage.events if e.type == "permission_decision"]
        assert decided.data["permission_id"] == request["data"]["permission_id"]
        assert decided.data["decision"] == "deny" and decided.data["reason"] == "cancelled"
        assert h.engine.approvals.pending() == [] and agent_prompts(h) == []
