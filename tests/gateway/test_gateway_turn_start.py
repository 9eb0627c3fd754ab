"""A gateway prompt reaches the agent after one commit: the inbound record and the turn
are one transaction (docs/storage.md, "Turn start")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from gateway_kit import HarnessFactory, frames_until, is_done
from sqlalchemy import event, select

from hotplex.events import AgentEvent
from hotplex.storage.schema import inbound
from hotplex.testing.fakes import FakeAgentProcess


async def test_a_prompt_reaches_the_agent_after_one_commit(
    gateway: HarnessFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with gateway() as h:
        ws = await h.ws()
        await ws.send_json({"type": "execute", "session_id": "s1", "prompt": "warm"})
        await frames_until(ws, is_done())
        commits = [0]
        at_prompt: list[int] = []

        def commit(conn: Any) -> None:
            if conn.get_execution_options().get("hotplex_write"):
                commits[0] += 1

        event.listen(h.storage.engine.sync_engine, "commit", commit)
        fast = h.storage._fast
        assert fast is not None
        run = fast.run

        async def counted(work: Any) -> Any:
            result = await run(work)
            commits[0] += 1
            return result

        turn = FakeAgentProcess.turn

        def prompt_arrives(agent: FakeAgentProcess, prompt: str) -> AsyncIterator[AgentEvent]:
            at_prompt.append(commits[0])
            return turn(agent, prompt)

        monkeypatch.setattr(fast, "run", counted)
        monkeypatch.setattr(FakeAgentProcess, "turn", prompt_arrives)
        await ws.send_json({"type": "execute", "session_id": "s1", "prompt": "again"})
        frames = await frames_until(ws, is_done())
        assert frames[-1]["data"]["status"] == "ok"
        # before: record_inbound, then enqueue_turn with the message done, then start_turn
        assert at_prompt == [1]
        async with h.storage.read() as conn:
            rows = (await conn.execute(select(inbound.c.state, inbound.c.payload))).all()
        assert [(r.state, r.payload["text"]) for r in rows] == [("done", "warm"), ("done", "again")]
