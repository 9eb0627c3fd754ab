"""A session can work in a directory the caller names, and can be ended and forgotten:
nothing of it stays in memory, in storage or on disk (except a directory it was given)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from hotplex.errors import EngineError, SessionBusyError
from hotplex.services import STORAGE
from hotplex.testing.running import RunningHotPlex
from hotplex.testing.turns import texts

Start = Callable[..., Awaitable[RunningHotPlex]]


async def run(hp: RunningHotPlex, key: str, prompt: str, **kwargs: object) -> str:
    turn = await hp.engine.execute(key, prompt, **kwargs)  # type: ignore[arg-type]
    events = [event async for event in turn]
    return texts(events)


async def test_a_session_works_in_the_directory_execute_names(
    running_hotplex: Start, tmp_path: Path
) -> None:
    hp = await running_hotplex()
    project = tmp_path / "project"
    project.mkdir()
    assert await run(hp, "cron:jobs/a", "hello", work_dir=project) == "echo: hello"
    assert hp.provider.processes[0].spec.work_dir == project.resolve()
    # the same session again: same directory, or a clear error for another one
    assert await run(hp, "cron:jobs/a", "again", work_dir=project) == "echo: again"
    with pytest.raises(EngineError, match="works in"):
        await hp.engine.execute("cron:jobs/a", "elsewhere", work_dir=tmp_path)
    with pytest.raises(EngineError, match="not an existing absolute directory"):
        await hp.engine.execute("cron:jobs/b", "x", work_dir=tmp_path / "missing")
    with pytest.raises(EngineError, match="not an existing absolute directory"):
        await hp.engine.execute("cron:jobs/c", "x", work_dir=Path("relative"))


async def test_a_forgotten_session_leaves_nothing_behind(
    running_hotplex: Start, tmp_path: Path
) -> None:
    hp = await running_hotplex()
    storage = hp.runtime.ctx.services.get(STORAGE)
    key = "cron:jobs/fresh/run-1"
    work_dir = await hp.engine.work_dir(key)
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "notes.txt").write_text("left by the run")
    assert await run(hp, key, "hello") == "echo: hello"
    session_id = hp.engine.session_id(key)
    info = next(s for s in hp.engine.sessions() if s.session_id == session_id)
    state_dir = hp.engine.workdirs.state_dir(info.provider_session_id)
    state_dir.mkdir(parents=True, exist_ok=True)
    assert await storage.get_session(session_id) is not None
    assert await storage.read_events(session_id)

    assert await hp.engine.forget(session_id) is True

    assert session_id not in {s.session_id for s in hp.engine.sessions()}
    assert await storage.get_session(session_id) is None
    assert await storage.read_events(session_id) == []
    assert await storage.pending_turns(session_id) == []
    assert not work_dir.exists()
    assert not state_dir.exists()
    assert hp.provider.closed == [session_id]
    assert await hp.engine.forget(session_id) is False  # nothing left to forget
    # the key's next turn is a new session with a new agent session id
    assert await run(hp, key, "again") == "echo: again"
    again = next(s for s in hp.engine.sessions() if s.session_id == session_id)
    assert again.provider_session_id != info.provider_session_id


async def test_forgetting_keeps_a_directory_the_session_was_given(
    running_hotplex: Start, tmp_path: Path
) -> None:
    hp = await running_hotplex()
    project = tmp_path / "project"
    project.mkdir()
    (project / "keep.txt").write_text("mine")
    assert await run(hp, "cron:jobs/p", "hi", work_dir=project) == "echo: hi"
    assert await hp.engine.forget(hp.engine.session_id("cron:jobs/p"))
    assert (project / "keep.txt").read_text() == "mine"


async def test_a_session_with_waiting_turns_is_not_forgotten(running_hotplex: Start) -> None:
    hp = await running_hotplex()
    hp.provider.delay = 0.05
    first = await hp.engine.execute("k:w/c", "one")
    await hp.engine.execute("k:w/c", "two")
    with pytest.raises(SessionBusyError):
        await hp.engine.forget(hp.engine.session_id("k:w/c"))
    async for _ in first:
        pass


async def test_forgetting_keeps_another_sessions_directory_it_was_given(
    running_hotplex: Start,
) -> None:
    hp = await running_hotplex()
    assert await run(hp, "k:w/first", "one") == "echo: one"
    first = await hp.engine.work_dir("k:w/first")
    first.mkdir(parents=True, exist_ok=True)
    # a follow-up session working in the first session's own directory
    assert await run(hp, "k:w/second", "two", work_dir=first) == "echo: two"
    assert await hp.engine.forget(hp.engine.session_id("k:w/second"))
    assert first.is_dir()
