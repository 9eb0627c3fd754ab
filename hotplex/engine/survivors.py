"""Agent processes that a killed daemon never recorded, found by a tag and swept at start.

The engine stores an agent's pid only once the agent is up; a daemon killed before that
(while the agent waits at its start gate, or while it initializes) leaves a process that
restart recovery cannot find by its record. So every agent starts with ``HOTPLEX_AGENT_OF``
in its environment (inherited by whatever it forks): the daemon's pid and start time and
its data directory. At start-up, :func:`sweep_survivors` kills each process that carries
the tag of *this* data directory whose daemon is gone. It never touches another user's
processes (it reads only processes of its own uid), those of another HotPlex instance (a
different data directory), or those of a live daemon (pid and start time checked).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path

from hotplex.agent_process import process_start_time

__all__ = ["TAG", "agent_tag", "find_survivors", "sweep_survivors"]

log = logging.getLogger(__name__)

#: The environment variable that marks an agent process and its descendants.
TAG = "HOTPLEX_AGENT_OF"
_PREFIX = f"{TAG}=".encode()


def agent_tag(data_dir: Path) -> str:
    """The tag value for agents of this daemon: ``<pid>:<start time>:<data dir>``."""
    pid = os.getpid()
    return f"{pid}:{process_start_time(pid)}:{Path(data_dir).resolve()}"


def _tag_of(pid: int) -> str | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    for entry in environ.split(b"\0"):
        if entry.startswith(_PREFIX):
            return entry[len(_PREFIX) :].decode(errors="replace")
    return None


def _orphaned(tag: str, data_dir: str) -> bool:
    """The tag names ``data_dir`` and a daemon that no longer runs."""
    parts = tag.split(":", 2)
    if len(parts) != 3 or parts[2] != data_dir or not parts[0].isdigit():
        return False
    return str(process_start_time(int(parts[0]))) != parts[1]


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}


def find_survivors(data_dir: Path) -> list[int]:
    """Pids of this user's processes tagged with ``data_dir`` by a daemon that is gone."""
    directory, uid, me = str(Path(data_dir).resolve()), os.geteuid(), os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
        except OSError:
            continue
        tag = _tag_of(int(entry))
        if tag is not None and _orphaned(tag, directory) and not _gone(int(entry)):
            found.append(int(entry))
    return found


def sweep_survivors(data_dir: Path, *, wait: float = 5.0) -> int:
    """Kill (SIGKILL, with their process groups) the agents of a dead daemon of this data
    directory, and wait (bounded) until they are gone; how many were found. Blocking: run
    it in a thread."""
    pids = find_survivors(data_dir)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == pid:  # a gate shell or an agent: its whole group
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        log.warning("killed process %d left unrecorded by a previous daemon", pid)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and not all(_gone(pid) for pid in pids):
        time.sleep(0.01)  # SIGKILL is delivered asynchronously
    return len(pids)
