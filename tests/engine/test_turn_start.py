"""The turn-start path with storage: one commit between a prompt and the agent, and
nothing of the turn published before that commit is on disk (docs/storage.md,
"Turn start")."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

import hotplex.storage.fastpath as fastpath
from hotplex.config import Settings
from hotplex.engine import Engine
from hotplex.events import AgentEvent, AuditEvent
from hotplex.storage.sql import SqlStorage
from hotplex.testing.fakes import FakeAgentProcess, FakeProvider


class Commits:
    """Counts committed write transactions, through SQLAlchemy and the fast path."""

    def __init__(self, storage: SqlStorage, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.at_prompt: list[int] = []
        event.listen(storage.engine.sync_engine, "commit", self._commit)
        fast = storage._fast
        assert fast is not None
        run = fast.run

        async def counted(work: Any) -> Any:
            result = await run(work)
            self.count += 1
            return result

        monkeypatch.setattr(fast, "run", counted)
        turn = FakeAgentProcess.turn

        def at_prompt(agent: FakeAgentProcess, prompt: str) -> AsyncIterator[AgentEvent]:
            self.at_prompt.append(self.count)
            return turn(agent, prompt)

        monkeypatch.setattr(FakeAgentProcess, "turn", at_prompt)

    def _commit(self, conn: Any) -> None:
        # read transactions commit too; only count those that wrote
        if conn.get_execution_options().get("hotplex_write"):
            self.count += 1


@asynccontextmanager
async def engine_with_storage(
    settings: Settings, path: Path, emitted: list[AgentEvent | AuditEvent]
) -> AsyncIterator[tuple[Engine, SqlStorage]]:
    storage = SqlStorage(f"sqlite+aiosqlite:///{path}")
    await storage.open()

    async def emit(item: AgentEvent | AuditEvent) -> None:
        emitted.append(item)

    try:
        async with Engine(settings, FakeProvider(), emit=emit, store=storage) as engine:
            yield engine, storage
    finally:
        await storage.close()


async def test_a_hot_turn_commits_once_before_the_prompt_and_once_after(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with engine_with_storage(make_settings(), tmp_path / "h.db", []) as (engine, storage):
        await (await engine.execute("k", "first")).collect(5)  # the session and its agent
        commits = Commits(storage, monkeypatch)
        events = await (await engine.execute("k", "second")).collect(5)
        assert events[-1].type == "done" and events[-1].data["status"] == "ok"
        # before: record_inbound, enqueue_turn, start_turn | finish_turn, save_session
        await (await engine.execute("k", "third")).collect(5)
    assert commits.at_prompt[0] == 1  # accepted (started, inbound done): one transaction
    assert commits.at_prompt[1] - commits.at_prompt[0] == 2  # that turn's end, the next start


async def test_nothing_of_a_turn_is_published_before_its_record_is_synced(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emitted: list[AgentEvent | AuditEvent] = []
    release = threading.Event()
    real = fastpath._fsync_wal

    def slow_fsync(path: Path) -> None:
        assert release.wait(10)
        real(path)

    async with engine_with_storage(make_settings(), tmp_path / "h.db", emitted) as (engine, _):
        await (await engine.execute("k", "first")).collect(5)
        session = engine.get(engine.session_id("k"))
        assert session is not None and session.process is not None
        agent = session.process
        assert isinstance(agent, FakeAgentProcess)
        monkeypatch.setattr(fastpath, "_fsync_wal", slow_fsync)
        try:
            turn = await engine.execute("k", "second")
            async with asyncio.timeout(5):
                while agent.prompts[-1:] != ["second"]:
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            # the agent has the prompt (in the WAL, surviving a crash of the daemon), but
            # until its fsync nothing of the turn reaches clients or sinks
            assert [e for e in emitted if getattr(e, "turn_id", None) == turn.turn_id] == []
            assert session.seq == max(e.seq for e in emitted if isinstance(e, AgentEvent))
        finally:
            release.set()
        events = await turn.collect(5)
    assert [e.type for e in events][-1] == "done"
    assert [e.seq for e in events] == sorted(e.seq for e in events)
