"""The sweep of unrecorded agents of a dead daemon (hotplex.engine.survivors): it kills
what carries the tag of its own data directory and a gone daemon, and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hotplex.agent_process import process_start_time
from hotplex.engine.survivors import TAG, agent_tag, find_survivors, sweep_survivors


@pytest.fixture
def dead_daemon() -> str:
    """``pid:start time`` of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=-1)
    started = process_start_time(proc.pid)
    proc.communicate(b"", timeout=10)
    return f"{proc.pid}:{started}"


Spawn = Callable[..., "subprocess.Popen[bytes]"]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start ``sleep 60`` carrying ``tag`` (killed afterwards)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(tag: str, **options: Any) -> subprocess.Popen[bytes]:
        env = {"PATH": os.environ["PATH"], TAG: tag}
        proc = subprocess.Popen(["sleep", "60"], env=env, start_new_session=True, **options)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait(10)


def test_only_a_dead_daemons_agents_of_this_data_dir_are_swept(
    tmp_path: Path, dead_daemon: str, spawn: Spawn
) -> None:
    start = spawn
    mine, other = (tmp_path / "mine").resolve(), (tmp_path / "other").resolve()
    orphan = start(f"{dead_daemon}:{mine}")
    other_instance = start(f"{dead_daemon}:{other}")
    live_daemon = start(agent_tag(mine))
    garbled = start(f"x:y:{mine}")
    foreign_user = None
    if os.geteuid() == 0:  # a process of another user, tagged as an orphan of this dir
        foreign_user = start(f"{dead_daemon}:{mine}", user=65534)
    assert find_survivors(mine) == [orphan.pid]
    assert sweep_survivors(mine, wait=5) == 1
    assert orphan.wait(5) == -9
    for survivor in (other_instance, live_daemon, garbled, foreign_user):
        assert survivor is None or survivor.poll() is None
    assert find_survivors(mine) == []
