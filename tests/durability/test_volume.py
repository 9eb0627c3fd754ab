"""200 sessions x 20 turns through the runtime (engine, storage sink, real database): what
is stored is exactly what was delivered (minus text_delta, which storage never keeps)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from hotplex.config import load_settings
from hotplex.engine import ENGINE
from hotplex.events import AgentEvent
from hotplex.runtime import Runtime
from hotplex.services import STORAGE
from hotplex.testing.fakes import FakeProvider
from hotplex.testing.running import running_hotplex

SESSIONS, TURNS = 200, 20


@pytest.mark.timeout(600)
async def test_200_sessions_x_20_turns_store_exactly_what_was_delivered(
    tmp_path: Path, db_url: str
) -> None:
    config = {"engine": {"max_sessions": SESSIONS}, "storage": {"url": db_url}}
    delivered: dict[str, list[AgentEvent]] = {}

    async def converse(rt: Runtime, n: int) -> None:
        engine = rt.ctx.services.get(ENGINE)
        for t in range(TURNS):
            turn = await engine.execute(f"web:vol/s{n}", f"session {n} turn {t}")
            async for event in turn:
                delivered.setdefault(event.session_id, []).append(event)

    async with running_hotplex(tmp_path, config=config) as hp:
        rt = hp.runtime
        await asyncio.wait_for(
            asyncio.gather(*(converse(rt, n) for n in range(SESSIONS))), timeout=500
        )
        storage = rt.ctx.services.get(STORAGE)
        problems = await storage.integrity_check()
        stored = {sid: await storage.read_events(sid, limit=10_000) for sid in delivered}
    assert problems == []
    assert len(delivered) == SESSIONS
    turns = sum(1 for events in delivered.values() for e in events if e.type == "done")
    assert turns == SESSIONS * TURNS
    for sid, events in delivered.items():
        expected = [e for e in events if e.type != "text_delta"]
        assert stored[sid] == expected, f"session {sid}: stored differs from delivered"


async def test_python_api_reads_history_from_storage(tmp_path: Path, db_url: str) -> None:
    from hotplex.engine.engine import Engine
    from hotplex.storage.sql import SqlStorage

    raw = {"engine": {"data_dir": str(tmp_path / "data")}, "storage": {"url": db_url}}
    settings = load_settings(None, text=yaml.safe_dump(raw), environ={}).settings
    storage = SqlStorage(db_url)
    await storage.open()
    try:
        async with Engine(
            settings, FakeProvider(), store=storage, emit=lambda item: _store(storage, item)
        ) as engine:
            events = await (await engine.execute("k", "hello")).collect(10)
            history = await engine.history(engine.session_id("k"))
        async with Engine(settings, FakeProvider(), store=storage) as restarted:
            after_restart = await restarted.history(restarted.session_id("k"), since_seq=1)
    finally:
        await storage.close()
    assert history == [e for e in events if e.type != "text_delta"]
    assert after_restart[:-1] == history[1:]  # then the stop of the first engine's agent
    assert after_restart[-1].type == "session" and after_restart[-1].data == {"state": "ended"}


async def _store(storage: object, item: object) -> None:
    from hotplex.events import AgentEvent as Event

    if isinstance(item, Event) and item.type != "text_delta":
        await storage.append_batch([item], ())  # type: ignore[attr-defined]


async def test_approvals_are_stored_with_their_decision(tmp_path: Path, db_url: str) -> None:
    from hotplex.engine.engine import Engine
    from hotplex.storage.sql import SqlStorage
    from hotplex.testing.fakes import ToolCall

    raw = {"engine": {"data_dir": str(tmp_path / "data")}, "storage": {"url": db_url}}
    settings = load_settings(None, text=yaml.safe_dump(raw), environ={}).settings
    storage = SqlStorage(db_url)
    await storage.open()
    try:
        provider = FakeProvider([[ToolCall("Bash", {"command": "make"})]])
        async with Engine(settings, provider, store=storage) as engine:
            turn = await engine.execute("k", "build", user="alice")
            async with asyncio.timeout(10):
                async for event in turn:
                    if event.type == "permission_request":
                        permission_id = event.data["permission_id"]
                        stored = await storage.get_approval(permission_id)
                        assert stored is not None and stored.decision is None
                        await engine.approvals.decide(
                            permission_id, "allow", by="alice", scope="session"
                        )
        record = await storage.get_approval(permission_id)
    finally:
        await storage.close()
    assert record is not None and record.request.tool == "Bash"
    assert (record.decision, record.decided_by, record.scope) == ("allow", "alice", "session")
