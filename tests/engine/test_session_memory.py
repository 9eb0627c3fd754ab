"""What a live session costs the daemon: bounded bookkeeping, no finished turn kept, and
(on Python 3.11) no thread per agent process."""

from __future__ import annotations

import gc
import sys
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from hotplex.config import Settings
from hotplex.engine import Engine
from hotplex.engine.session import Turn
from hotplex.providers.claude_code import ClaudeCodeProvider
from hotplex.testing.fake_agent import write_wrapper
from hotplex.testing.fakes import FakeProvider

SESSIONS = 200
#: Frames kept per allocation, so a failure names where the memory went.
FRAMES = 12
#: Measured 8.8 KB per session (Session, its worker task and queue, the fake agent, the
#: work directory path); the bound leaves room for other Python versions.
BYTES_PER_SESSION = 16_000


async def test_a_live_session_holds_little_and_no_finished_turn(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(max_sessions=SESSIONS + 10)
    async with Engine(settings, FakeProvider()) as engine:
        await (await engine.execute("warm", "hi")).collect(5)
        gc.collect()
        tracemalloc.start(FRAMES)
        try:
            before = tracemalloc.take_snapshot()
            for i in range(SESSIONS):
                await (await engine.execute(f"k{i}", "hi")).collect(5)
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
        # the worker waiting for a session's next turn used to keep the last one (its
        # events queue, two events and the prompt)
        assert sum(isinstance(o, Turn) for o in gc.get_objects()) == 0
        assert len(engine.sessions()) == SESSIONS + 1
    assert grown / SESSIONS < BYTES_PER_SESSION, (
        f"{grown / SESSIONS:.0f} B per session; threads {threading.enumerate()}; "
        f"largest growth:\n{growth_sites(before, after)}"
    )


def growth_sites(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, top: int = 8) -> str:
    """The allocation sites that grew most between the snapshots, per session, each with
    its call chain (innermost frame first), so a failure says what was kept."""
    lines = []
    for stat in after.compare_to(before, "traceback")[:top]:
        chain = " <- ".join(
            f"{Path(frame.filename).name}:{frame.lineno}" for frame in reversed(stat.traceback)
        )
        lines.append(f"  {stat.size_diff / SESSIONS:+.0f} B ({stat.count_diff:+d} blocks): {chain}")
    return "\n".join(lines)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12+ watches children by pidfd")
async def test_live_agents_cost_no_thread_each(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    binary = write_wrapper(tmp_path / "bin")
    settings = make_settings(extra={"provider": {"binary": str(binary)}})
    async with Engine(settings, ClaudeCodeProvider(settings.provider)) as engine:
        await (await engine.execute("k0", "hi")).collect(20)
        threads = threading.active_count()
        for i in range(1, 6):
            await (await engine.execute(f"k{i}", "hi")).collect(20)
        assert engine.live_processes == 6
        # Python 3.11's ThreadedChildWatcher starts a thread per child process
        assert threading.active_count() == threads
