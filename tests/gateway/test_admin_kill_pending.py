"""An admin kills a session while one of its tool calls waits for a person's approval: the
kill answers at once, the approval is denied and the turn ends with ``done``."""

from __future__ import annotations

import asyncio

from gateway_kit import ADMIN_TOKEN, WAIT, HarnessFactory, read_sse

from hotplex.testing.fakes import ToolCall

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_kill_while_an_approval_waits(gateway: HarnessFactory) -> None:
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
