"""The cgroup backends (v2 and v1): one cgroup per agent under a parent HotPlex manages,
with tree-wide memory and process limits and a kill of everything in it (see
:mod:`hotplex.engine.limits`)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from hotplex.confinement import AgentLimits
from hotplex.engine.rlimits import Rlimits, gated, held

__all__ = ["Cgroup1Backend", "Cgroup2Backend", "CgroupBackend"]

log = logging.getLogger(__name__)

KILL_ROUNDS = 50
KILL_DEADLINE = 2.0
RELEASE_DEADLINE = 1.0
POLL = 0.04


class CgroupBackend:
    """Per-agent cgroups under one parent directory per hierarchy."""

    name = "cgroup"

    def __init__(self, parents: Mapping[str, Path], prlimit: str | None = None):
        self.parents = dict(parents)
        self._rlimits = Rlimits(prlimit)

    def wrap(self, argv: list[str], limits: AgentLimits) -> list[str]:
        return gated(self._rlimits.wrap(argv, limits, tree=False))

    def attach(self, pid: int, group: str, limits: AgentLimits) -> None:
        with held(pid):
            self._place(pid, group, limits)

    def _place(self, pid: int, group: str, limits: AgentLimits) -> None:
        wrapped = self._rlimits.prlimit is not None
        try:
            self._enter(pid, group, limits)
        except OSError as exc:
            log.info(
                "%s: cannot limit agent %d in %s (%s); using rlimits", self.name, pid, group, exc
            )
            self._rlimits.apply(pid, limits, tree=True, process=not wrapped)
        else:
            self._rlimits.apply(pid, limits, tree=False, process=not wrapped)

    def directories(self, group: str) -> list[Path]:
        """The agent's cgroup directory in each hierarchy."""
        _check_group(group)
        return [parent / group for parent in self.parents.values()]

    def members(self, group: str) -> set[int]:
        """Pids of the processes in the agent's cgroup."""
        return _read_members(self.directories(group))

    def kill_group(self, group: str) -> int:
        directories = [d for d in self.directories(group) if d.is_dir()]
        killed: set[int] = set()
        deadline = time.monotonic() + KILL_DEADLINE
        for _ in range(KILL_ROUNDS):
            left = _read_members(directories)
            if not left:
                return len(killed)
            killed |= self._kill(directories, left)
            if time.monotonic() > deadline:
                break
            time.sleep(POLL)
        survivors = sorted(_read_members(directories))
        log.warning("%s: processes of %s survive SIGKILL: %s", self.name, group, survivors)
        return len(killed)

    def release(self, group: str) -> None:
        deadline = time.monotonic() + RELEASE_DEADLINE
        for directory in self.directories(group):
            _rmdir(directory, deadline)

    def _enter(self, pid: int, group: str, limits: AgentLimits) -> None:
        for controller, directory in zip(self.parents, self.directories(group), strict=True):
            directory.mkdir(parents=True, exist_ok=True)
            for name, value in self._limit_files(controller, limits):
                (directory / name).write_text(value)
        for directory in self.directories(group):
            (directory / "cgroup.procs").write_text(str(pid))

    def _limit_files(self, controller: str, limits: AgentLimits) -> list[tuple[str, str]]:
        raise NotImplementedError

    def _kill(self, directories: list[Path], pids: set[int]) -> set[int]:
        return _kill_members(directories, pids)


class Cgroup1Backend(CgroupBackend):
    """cgroup v1: ``memory`` and ``pids`` hierarchies, killed member by member."""

    name = "cgroup1"

    def __init__(self, memory: Path, pids: Path, prlimit: str | None = None):
        super().__init__({"memory": memory, "pids": pids}, prlimit)

    def _limit_files(self, controller: str, limits: AgentLimits) -> list[tuple[str, str]]:
        if controller == "memory":
            memory = limits.memory_bytes
            return [] if memory is None else [("memory.limit_in_bytes", str(memory))]
        return [("pids.max", _max(limits.max_pids))]


class Cgroup2Backend(CgroupBackend):
    """cgroup v2: one directory with ``memory.max`` and ``pids.max``; ``cgroup.kill``."""

    name = "cgroup2"

    def __init__(self, parent: Path, prlimit: str | None = None):
        super().__init__({"unified": parent}, prlimit)

    def _limit_files(self, controller: str, limits: AgentLimits) -> list[tuple[str, str]]:
        return [("memory.max", _max(limits.memory_bytes)), ("pids.max", _max(limits.max_pids))]

    def _kill(self, directories: list[Path], pids: set[int]) -> set[int]:
        kill_file = directories[0] / "cgroup.kill"
        if not kill_file.exists():  # before Linux 5.14
            return _kill_members(directories, pids)
        with contextlib.suppress(OSError):
            kill_file.write_text("1")
        return pids


def _max(value: int | None) -> str:
    return "max" if value is None else str(value)


def _check_group(group: str) -> None:
    if not group or group in {".", ".."} or "/" in group or "\0" in group:
        raise ValueError(f"not a valid agent group name: {group!r}")


def _read_members(directories: Sequence[Path]) -> set[int]:
    pids: set[int] = set()
    for directory in directories:
        with contextlib.suppress(OSError):
            pids.update(int(line) for line in (directory / "cgroup.procs").read_text().split())
    return pids


def _kill_members(directories: Sequence[Path], pids: set[int]) -> set[int]:
    """SIGKILL ``pids`` that are still members. A pidfd pins each process first, so a pid
    reused by an unrelated process between the listing and the signal is never hit."""
    handles = {pid: _pidfd_open(pid) for pid in pids}
    try:
        members = _read_members(directories)
        killed = {pid for pid, fd in handles.items() if pid in members and _sigkill(pid, fd)}
    finally:
        for fd in handles.values():
            if fd is not None and fd >= 0:
                os.close(fd)
    return killed


def _pidfd_open(pid: int) -> int | None:
    """A pidfd; -1 when the process is gone; None when the kernel has no pidfds (< 5.3)."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return -1
    except OSError as exc:
        if exc.errno == errno.ENOSYS:
            return None
        raise


def _sigkill(pid: int, fd: int | None) -> bool:
    try:
        if fd is None:
            os.kill(pid, signal.SIGKILL)
        elif fd >= 0:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
        else:
            return False
    except ProcessLookupError:
        return False
    return True


def _rmdir(directory: Path, deadline: float) -> None:
    """rmdir fails while the cgroup still has processes (they take a moment to go)."""
    while True:
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if time.monotonic() > deadline:
                log.warning("cannot remove cgroup %s: %s", directory, exc)
                return
        time.sleep(POLL / 4)
