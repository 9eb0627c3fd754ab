"""The admin API: auth, sessions (list, show, kill, events), stats and the audit log."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway_kit import ADMIN_TOKEN, KEYS, WAIT, Harness, HarnessFactory, read_sse

from hotplex.events import AgentEvent
from hotplex.testing.fakes import ToolCall

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def turn(h: Harness, client_id: str, prompt: str = "hello there") -> str:
    """Run one turn to its end; the engine's session id."""
    session_id = h.engine_id("alice", client_id)

    def dones(events: list[AgentEvent]) -> int:
        return sum(e.session_id == session_id and e.type == "done" for e in events)

    before = dones(h.storage.events)
    body = {"session_id": client_id, "prompt": prompt}
    async with h.post("/api/v1/execute", body) as response:
        assert response.status == 200
        await read_sse(response)
    await h.until_stored(lambda events: dones(events) > before)
    return session_id


async def get(h: Harness, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with h.client.get(path, headers=ADMIN if headers is None else headers) as response:
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body


async def test_admin_needs_the_token(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        for path in ("/admin/v1/sessions", "/admin/v1/stats", "/admin/v1/audit"):
            assert (await get(h, path, {}))[0] == 401
            api_key = {"Authorization": f"Bearer {KEYS['alice']}"}
            assert (await get(h, path, api_key))[0] == 401
            assert (await get(h, path, {"Authorization": "Bearer wrong"}))[0] == 401
            assert (await get(h, path))[0] == 200
        async with h.client.delete("/admin/v1/sessions/x") as response:
            assert response.status == 401


async def test_without_a_token_loopback_is_admin(gateway: HarnessFactory) -> None:
    async with gateway(keys=False) as h:
        status, body = await get(h, "/admin/v1/sessions", {})
        assert status == 200 and body == {"sessions": []}


async def test_list_and_show_sessions(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        session_id = await turn(h, "c1")
        status, body = await get(h, "/admin/v1/sessions")
        assert status == 200
        (row,) = body["sessions"]
        assert row["session_id"] == session_id
        assert row["address"] == "web:alice/c1"
        assert row["state"] == "idle" and row["turns"] == 1 and row["queued"] == 0
        assert row["input_tokens"] == 2 and row["output_tokens"] == 2
        assert isinstance(row["pid"], int | None) and row["idle_seconds"] >= 0
        status, detail = await get(h, f"/admin/v1/sessions/{session_id}")
        assert status == 200 and detail["session_id"] == session_id
        assert detail["pending_approvals"] == []
        status, body = await get(h, "/admin/v1/sessions/nope")
        assert status == 404 and body["error"]["code"] == "unknown_session"


async def test_show_lists_pending_approvals(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        h.provider.queue_turn(ToolCall("Bash", {"command": "ls"}))
        async with h.post("/api/v1/execute", {"session_id": "c1", "prompt": "tool"}) as response:
            await read_sse(response, lambda e: e.event == "permission_request")
            session_id = h.engine_id("alice", "c1")
            status, detail = await get(h, f"/admin/v1/sessions/{session_id}")
            assert status == 200 and detail["state"] == "running"
            (pending,) = detail["pending_approvals"]
            assert pending["tool"] == "Bash" and pending["input"] == {"command": "ls"}
            status, stats = await get(h, "/admin/v1/stats")
            assert stats["pending_approvals"] == 1
            answer = {"decision": "deny"}
            path = f"/api/v1/permissions/{pending['permission_id']}"
            async with h.post(path, answer, key=None, headers=ADMIN) as r:
                assert r.status == 200
            await read_sse(response)  # the turn ends
        _, detail = await get(h, f"/admin/v1/sessions/{session_id}")
        assert detail["pending_approvals"] == [] and detail["state"] == "idle"


async def test_kill_closes_the_process(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        session_id = await turn(h, "c1")
        async with h.client.delete(f"/admin/v1/sessions/{session_id}", headers=ADMIN) as r:
            assert r.status == 200
            assert await r.json() == {"session_id": session_id, "killed": True}
        assert h.provider.closed == [h.provider.processes[0].spec.session_id]
        assert not h.provider.processes[0].alive
        _status, detail = await get(h, f"/admin/v1/sessions/{session_id}")
        assert detail["state"] == "stopped" and detail["pid"] is None
        async with h.client.delete("/admin/v1/sessions/nope", headers=ADMIN) as r:
            assert r.status == 404
            assert (await r.json())["error"]["code"] == "unknown_session"


async def test_events_are_paged(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        session_id = await turn(h, "c1")
        await turn(h, "c1", "again")
        path = f"/admin/v1/sessions/{session_id}/events"
        status, first = await get(h, f"{path}?limit=3")
        assert status == 200 and len(first["events"]) == 3 and first["more"] is True
        seqs = [e["seq"] for e in first["events"]]
        assert first["next_since_seq"] == seqs[-1]
        collected = list(first["events"])
        since = first["next_since_seq"]
        for _ in range(20):
            _, page = await get(h, f"{path}?limit=3&since_seq={since}")
            collected += page["events"]
            since = page["next_since_seq"]
            if not page["more"]:
                break
        stored = h.storage.of(session_id)
        assert [e["seq"] for e in collected] == [e.seq for e in stored]
        assert [e["type"] for e in collected].count("done") == 2
        status, _body = await get(h, "/admin/v1/sessions/nope/events")
        assert status == 404


async def test_bad_query_parameters_are_400(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        session_id = await turn(h, "c1")
        for query in ("limit=x", "limit=0", "limit=1001", "since_seq=-1", "since_seq=1.5"):
            status, body = await get(h, f"/admin/v1/sessions/{session_id}/events?{query}")
            assert status == 400, query
            assert body["error"]["code"] == "invalid_query"
        for query in ("limit=abc", "limit=5000", "since=yesterday", "before_id=0"):
            status, body = await get(h, f"/admin/v1/audit?{query}")
            assert status == 400, query
            assert set(body["error"]) == {"code", "message"}


async def test_stats(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        await turn(h, "c1")
        await turn(h, "c2")
        status, stats = await get(h, "/admin/v1/stats")
        assert status == 200
        assert stats["sessions"] == 2 and stats["sessions_by_state"]["idle"] == 2
        assert stats["live_processes"] == 2 and stats["turns"] == 2
        assert stats["input_tokens"] == 4 and stats["output_tokens"] == 4
        assert stats["cost_usd"] == 0.0
        assert stats["storage"] == "sqlite+aiosqlite"
        assert stats["limit_backend"] in {"cgroup2", "cgroup1", "rlimit", "off"}
        assert stats["uptime_seconds"] >= 0 and "metrics" in stats["sinks"]


async def test_audit_is_filtered_and_paged(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        first = await turn(h, "c1")
        second = await turn(h, "c2")
        async with h.client.delete(f"/admin/v1/sessions/{first}", headers=ADMIN) as r:
            assert r.status == 200

        async def audit(query: str) -> dict[str, Any]:
            status, body = await get(h, f"/admin/v1/audit?{query}")
            assert status == 200
            assert isinstance(body, dict)
            return body

        async with asyncio.timeout(5):  # the storage sink writes the audit off the hot path
            while not (await audit("type=session.killed"))["audit"]:
                await asyncio.sleep(0.02)
        (killed,) = (await audit("type=session.killed"))["audit"]
        assert killed["session_id"] == first and killed["actor"] == "admin"
        created = (await audit("type=session.created"))["audit"]
        assert {a["session_id"] for a in created} == {first, second}
        mine = (await audit(f"session_id={second}"))["audit"]
        assert {a["session_id"] for a in mine} == {second}
        both = (await audit("type=session.created,session.killed"))["audit"]
        assert len(both) == 3
        page = await audit("limit=1")
        assert len(page["audit"]) == 1 and page["next_before_id"] == page["audit"][0]["id"]
        ids = [page["audit"][0]["id"]]
        while page["next_before_id"] is not None:
            page = await audit(f"limit=1&before_id={page['next_before_id']}")
            ids += [a["id"] for a in page["audit"]]
        assert ids == sorted(ids, reverse=True) and len(ids) >= 3
        assert (await audit("since=9999999999"))["audit"] == []


async def test_admin_refuses_rebound_hosts_and_foreign_origins(gateway: HarnessFactory) -> None:
    """Without an admin token loopback is trusted, so a page whose DNS name was rebound to
    127.0.0.1 (a foreign Host) or a cross-site request (a foreign Origin) is refused."""
    async with gateway(keys=False) as h:
        status, _ = await get(h, "/admin/v1/stats", headers={})
        assert status == 200
        rebound = {"Host": "attacker.example:8080"}
        assert (await get(h, "/admin/v1/stats", headers=rebound))[0] == 403
        foreign = {"Origin": "http://attacker.example"}
        assert (await get(h, "/admin/v1/stats", headers=foreign))[0] == 403
        async with h.client.delete("/admin/v1/sessions/x", headers=foreign) as response:
            assert response.status == 403
        same = {"Origin": str(h.client.make_url("/")).rstrip("/")}
        assert (await get(h, "/admin/v1/stats", headers=same))[0] == 200
    async with gateway() as h:  # with a token, the token decides; a foreign Origin still not
        assert (await get(h, "/admin/v1/stats", headers={**ADMIN, **rebound}))[0] == 200
        assert (await get(h, "/admin/v1/stats", headers={**ADMIN, **foreign}))[0] == 403


async def test_kill_while_an_approval_waits(gateway: HarnessFactory) -> None:
    """The kill answers at once, the waiting approval is denied and the turn ends."""
    async with gateway() as h:
        h.provider.queue_turn(ToolCall("Bash", {"command": "ls"}))
        async with h.post("/api/v1/execute", {"session_id": "s1", "prompt": "tool"}) as response:
            await read_sse(response, lambda e: e.event == "permission_request")
            sid = h.engine_id("alice", "s1")
            async with asyncio.timeout(WAIT):
                async with h.client.delete(f"/admin/v1/sessions/{sid}", headers=ADMIN) as r:
                    assert r.status == 200
            rest = await read_sse(response)
        decided = [e.data["data"] for e in rest if e.event == "permission_decision" and e.data]
        assert decided and decided[0]["decision"] == "deny" and decided[0]["by"] == "admin"
        assert rest[-1].event == "done"
        assert h.engine.approvals.pending(sid) == []
