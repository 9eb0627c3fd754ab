"""Rlimits on an agent process (the ``rlimit`` backend, and the per-process limits every
backend sets), and the start gate that holds a new process stopped until its limits are
in place (see :mod:`hotplex.engine.limits`)."""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from hotplex.confinement import AgentLimits

__all__ = [
    "GATE_DEADLINE",
    "HOLD_GATE_ENV",
    "RlimitBackend",
    "Rlimits",
    "gated",
    "held",
    "user_task_count",
]

log = logging.getLogger(__name__)

_PRLIMIT_OPTION = {
    resource.RLIMIT_DATA: "data",
    resource.RLIMIT_NPROC: "nproc",
    resource.RLIMIT_NOFILE: "nofile",
    resource.RLIMIT_CORE: "core",
}
_Setting = tuple[int, int, int]  # resource, soft, hard


class Rlimits:
    """The rlimit part of the limits: through the ``prlimit`` binary or :func:`resource.prlimit`.

    *Tree* limits (data, nproc) stand in for a cgroup; *process* limits (open files, core)
    are always rlimits.
    """

    def __init__(self, prlimit: str | None):
        self.prlimit = prlimit

    def wrap(self, argv: Sequence[str], limits: AgentLimits, *, tree: bool) -> list[str]:
        settings = self.settings(limits, tree=tree, process=True) if self.prlimit else []
        if not self.prlimit or not settings:
            return list(argv)
        options = [f"--{_PRLIMIT_OPTION[res]}={soft}:{_fmt(hard)}" for res, soft, hard in settings]
        return [self.prlimit, *options, "--", *argv]

    def apply(self, pid: int, limits: AgentLimits, *, tree: bool, process: bool) -> None:
        for res, soft, hard in self.settings(limits, tree=tree, process=process):
            try:
                resource.prlimit(pid, res, (soft, hard))
            except (OSError, ValueError) as exc:
                log.info("cannot set %s of agent %d: %s", _PRLIMIT_OPTION[res], pid, exc)

    def settings(self, limits: AgentLimits, *, tree: bool, process: bool) -> list[_Setting]:
        wanted: list[_Setting | None] = []
        if tree:
            wanted += [_capped(resource.RLIMIT_DATA, limits.memory_bytes), _nproc(limits)]
        if process:
            wanted.append(_capped(resource.RLIMIT_NOFILE, limits.max_open_files))
            wanted.append(None if limits.core_dumps else _capped(resource.RLIMIT_CORE, 0))
        return [setting for setting in wanted if setting is not None]


def _fmt(value: int) -> str:
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)


def _capped(res: int, value: int | None) -> _Setting | None:
    """Soft and hard limit ``value``, capped at our own hard limit, which the agent inherits
    (only root may raise a hard limit)."""
    if value is None:
        return None
    hard = resource.getrlimit(res)[1]
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    return res, value, value


def _nproc(limits: AgentLimits) -> _Setting | None:
    """RLIMIT_NPROC counts all tasks of the user: allow the current ones plus ``max_pids``."""
    if limits.max_pids is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    wanted = user_task_count(os.getuid()) + limits.max_pids
    if soft != resource.RLIM_INFINITY and wanted >= soft:
        return None
    return resource.RLIMIT_NPROC, wanted, hard


def user_task_count(uid: int) -> int:
    """Tasks (threads) whose real user is ``uid``, as far as this pid namespace shows them."""
    count = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):
            continue
        if int(fields["Uid"].split()[0]) == uid:
            count += int(fields["Threads"])
    return count


class RlimitBackend:
    """Rlimits only: no tree-wide memory limit, a weak fork guard, no group kill."""

    name = "rlimit"

    def __init__(self, prlimit: str | None = None):
        self._rlimits = Rlimits(prlimit)

    def wrap(self, argv: list[str], limits: AgentLimits) -> list[str]:
        if not self._rlimits.prlimit:
            return gated(argv)
        return self._rlimits.wrap(argv, limits, tree=True)

    def attach(self, pid: int, group: str, limits: AgentLimits) -> None:
        if not self._rlimits.prlimit:
            with held(pid):
                self._rlimits.apply(pid, limits, tree=True, process=True)

    def kill_group(self, group: str) -> int:
        return 0

    def release(self, group: str) -> None:
        return None


# -- the start gate ------------------------------------------------------------------------

_GATE_SCRIPT = 'kill -STOP "$$"; exec "$@"'
GATE_DEADLINE = 5.0
#: Testing only: see :func:`_hold_for_test`.
HOLD_GATE_ENV = "HOTPLEX_TESTING_HOLD_GATE"
_T = TypeVar("_T")


def gated(argv: Sequence[str]) -> list[str]:
    """``argv`` behind a shell that stops itself until :func:`held` lets it go on."""
    return ["/bin/sh", "-c", _GATE_SCRIPT, "hotplex-gate", *argv]


@contextlib.contextmanager
def held(pid: int) -> Iterator[None]:
    """Hold a gated process stopped while its limits are set; a pid that did not come from
    :func:`gated` is limited as it runs."""
    at_gate = _is_gated(pid)
    if at_gate and not _wait_stopped(pid):
        log.warning("agent %d did not reach its start gate in %.0fs", pid, GATE_DEADLINE)
    if at_gate:
        _hold_for_test(pid)
    try:
        yield
    finally:
        if at_gate:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def _hold_for_test(pid: int) -> None:
    """A testing hook: with ``HOTPLEX_TESTING_HOLD_GATE`` naming a FIFO, report the pid of
    an agent stopped at its gate through the FIFO (blocks until a reader opens it), then
    keep it there until a writer opens the FIFO, so a test can kill the daemon meanwhile."""
    fifo = os.environ.get(HOLD_GATE_ENV)
    if not fifo:
        return
    with open(fifo, "w") as out:
        out.write(f"{pid}\n")
    with open(fifo) as held:
        held.read()


def _is_gated(pid: int) -> bool:
    # Popen returns while execve is still running: cmdline reads empty until the new
    # program's arguments are in place.
    argv = _poll(lambda: Path(f"/proc/{pid}/cmdline").read_bytes(), pid)
    return argv is not None and argv.split(b"\0")[1:3] == [b"-c", _GATE_SCRIPT.encode()]


def _wait_stopped(pid: int) -> bool:
    return _poll(lambda: _state(pid) in {"T", "t"}, pid) is not None


def _poll(probe: Callable[[], _T], pid: int) -> _T | None:
    """The first truthy ``probe()``; None once ``pid`` is gone or after ``GATE_DEADLINE``."""
    deadline = time.monotonic() + GATE_DEADLINE
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if result := probe():
                return result
        if _state(pid) in {None, "Z", "X"}:
            return None
        time.sleep(0.0005)
    return None


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
