"""Resource limits for agent process trees: memory, a fork-bomb guard, open files, core dumps.

Three backends, the first that works on the host is used (:func:`detect_backend`):

``cgroup2``
    A per-agent cgroup ``<delegated parent>/hotplex/<group>`` with ``memory.max`` and
    ``pids.max``. :meth:`~LimitBackend.kill_group` writes ``cgroup.kill``, which also catches
    grandchildren that ``setsid()`` out of the agent's process group. Needs a cgroup we may
    manage: the root cgroup, or a cgroup delegated to us (systemd ``Delegate=yes`` with
    ``DelegateSubgroup=daemon``, so the daemon runs in a leaf and its parent is ours).
``cgroup1``
    Per-agent ``hotplex/<group>`` directories under our own cgroup of the v1 ``memory``
    (``memory.limit_in_bytes``) and ``pids`` (``pids.max``) hierarchies; the group is
    killed by signalling every member until it is empty.
``rlimit``
    No cgroup is writable: rlimits on the agent process, inherited by its children but
    counted per process (``RLIMIT_DATA``) or per user (``RLIMIT_NPROC``), and nothing catches
    a grandchild that leaves the process group. ``RLIMIT_NPROC`` is weak: it counts every
    task of the user, so its soft limit is set to the user's current task count plus
    ``max_pids`` (never lower, or the host's other processes would starve the agent), and
    root ignores it entirely.

Open files and core dumps are always rlimits (cgroups have no such knobs).

Limits are applied without ``preexec_fn`` (unsafe with threads): :meth:`~LimitBackend.wrap`
prefixes the command with ``prlimit`` when it is installed, and :meth:`~LimitBackend.attach`
moves the new process into its cgroup (or calls :func:`resource.prlimit` on it) right after
the spawn. Where ``attach`` has work to do, ``wrap`` also puts a start gate in front
(``/bin/sh -c 'kill -STOP "$$"; exec "$@"'``): the process stops itself before it runs the
agent, ``attach`` places it and lets it go on (SIGCONT), so nothing the agent forks can start
outside its limits. A command from ``wrap`` must therefore always be followed by ``attach``.
``RLIMIT_AS`` is never used: Node/V8 and Bun reserve huge amounts of virtual address space at
startup and fail under it.

Usage::

    backend = detect_backend()
    proc = subprocess.Popen(backend.wrap(argv, limits), start_new_session=True, ...)
    backend.attach(proc.pid, group, limits)
    ...
    backend.kill_group(group)   # blocks up to ~2 s: run it in a thread from async code
    backend.release(group)
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import resource
import shutil
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

__all__ = [
    "AgentLimits",
    "Cgroup1Backend",
    "Cgroup2Backend",
    "Confinement",
    "LimitBackend",
    "RlimitBackend",
    "detect_backend",
]

log = logging.getLogger(__name__)

BACKENDS = ("cgroup2", "cgroup1", "rlimit")
PARENT_NAME = "hotplex"
KILL_ROUNDS = 50
KILL_DEADLINE = 2.0
RELEASE_DEADLINE = 1.0
POLL = 0.04


@dataclass(frozen=True)
class AgentLimits:
    """Limits for one agent and everything it starts. ``None`` means unlimited."""

    memory_bytes: int | None = 4 * 1024**3
    """Memory of the whole tree (cgroups), or data segment of each process (rlimit)."""
    max_pids: int | None = 512
    """Processes and threads of the whole tree: the fork-bomb guard."""
    max_open_files: int | None = 4096
    """Open files per process."""
    core_dumps: bool = False


@dataclass(frozen=True)
class Confinement:
    """What an agent is started under: a backend, its limits, and the agent's group name
    (unique per live agent)."""

    backend: LimitBackend
    limits: AgentLimits
    group: str


@runtime_checkable
class LimitBackend(Protocol):
    """Applies :class:`AgentLimits` to one agent's process tree, and kills that tree."""

    name: str
    """``"cgroup2"``, ``"cgroup1"`` or ``"rlimit"``."""

    def wrap(self, argv: list[str], limits: AgentLimits) -> list[str]:
        """The command line that runs ``argv`` under the limits (e.g. behind ``prlimit``).
        It may wait, stopped, for :meth:`attach`: always call that right after the spawn."""
        ...

    def attach(self, pid: int, group: str, limits: AgentLimits) -> None:
        """Right after the spawn: put ``pid`` under the limits of the agent ``group``, then let
        it run. Never raises; falls back to rlimits when a cgroup cannot be set up."""
        ...

    def kill_group(self, group: str) -> int:
        """SIGKILL every process left in the agent's cgroup; how many (0 without cgroups)."""
        ...

    def release(self, group: str) -> None:
        """Remove the agent's cgroup (after :meth:`kill_group`)."""
        ...


class _Unusable(Exception):
    """A backend cannot work on this host; the message says why."""


# -- rlimits -------------------------------------------------------------------------------

_PRLIMIT_OPTION = {
    resource.RLIMIT_DATA: "data",
    resource.RLIMIT_NPROC: "nproc",
    resource.RLIMIT_NOFILE: "nofile",
    resource.RLIMIT_CORE: "core",
}
_Setting = tuple[int, int, int]  # resource, soft, hard


class _Rlimits:
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
        self._rlimits = _Rlimits(prlimit)

    def wrap(self, argv: list[str], limits: AgentLimits) -> list[str]:
        if not self._rlimits.prlimit:
            return _gated(argv)
        return self._rlimits.wrap(argv, limits, tree=True)

    def attach(self, pid: int, group: str, limits: AgentLimits) -> None:
        if not self._rlimits.prlimit:
            with _held(pid):
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


def _gated(argv: Sequence[str]) -> list[str]:
    """``argv`` behind a shell that stops itself until :func:`_held` lets it go on."""
    return ["/bin/sh", "-c", _GATE_SCRIPT, "hotplex-gate", *argv]


@contextlib.contextmanager
def _held(pid: int) -> Iterator[None]:
    """Hold a gated process stopped while its limits are set; a pid that did not come from
    :func:`_gated` is limited as it runs."""
    gated = _is_gated(pid)
    if gated and not _wait_stopped(pid):
        log.warning("agent %d did not reach its start gate in %.0fs", pid, GATE_DEADLINE)
    if gated:
        _hold_for_test(pid)
    try:
        yield
    finally:
        if gated:
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


# -- cgroups -------------------------------------------------------------------------------


class _CgroupBackend:
    """Per-agent cgroups under one parent directory per hierarchy."""

    name = "cgroup"

    def __init__(self, parents: Mapping[str, Path], prlimit: str | None = None):
        self.parents = dict(parents)
        self._rlimits = _Rlimits(prlimit)

    def wrap(self, argv: list[str], limits: AgentLimits) -> list[str]:
        return _gated(self._rlimits.wrap(argv, limits, tree=False))

    def attach(self, pid: int, group: str, limits: AgentLimits) -> None:
        with _held(pid):
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


class Cgroup1Backend(_CgroupBackend):
    """cgroup v1: ``memory`` and ``pids`` hierarchies, killed member by member."""

    name = "cgroup1"

    def __init__(self, memory: Path, pids: Path, prlimit: str | None = None):
        super().__init__({"memory": memory, "pids": pids}, prlimit)

    def _limit_files(self, controller: str, limits: AgentLimits) -> list[tuple[str, str]]:
        if controller == "memory":
            memory = limits.memory_bytes
            return [] if memory is None else [("memory.limit_in_bytes", str(memory))]
        return [("pids.max", _max(limits.max_pids))]


class Cgroup2Backend(_CgroupBackend):
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


# -- detection -----------------------------------------------------------------------------


def detect_backend(
    root: Path = Path("/sys/fs/cgroup"), *, prefer: str | None = None
) -> LimitBackend:
    """The best backend that works here, trying ``cgroup2``, ``cgroup1``, then ``rlimit``.

    ``prefer`` starts the search at that backend (``prefer="rlimit"`` always gives rlimits).
    Each backend that cannot work is logged once at INFO. The check creates the parent
    directory ``hotplex`` in the cgroup hierarchies it uses.
    """
    if prefer is not None and prefer not in BACKENDS:
        raise ValueError(f"unknown limit backend {prefer!r}; choose from {', '.join(BACKENDS)}")
    prlimit = shutil.which("prlimit")
    probes = {"cgroup2": _probe_cgroup2, "cgroup1": _probe_cgroup1}
    for name in BACKENDS[BACKENDS.index(prefer or BACKENDS[0]) : -1]:
        try:
            return probes[name](root, prlimit)
        except (_Unusable, OSError) as exc:
            log.info("%s limits unavailable: %s", name, exc)
    return RlimitBackend(prlimit)


def own_cgroup(controller: str | None) -> str:
    """Our cgroup path in the v1 hierarchy of ``controller``, or in the v2 one (None)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if controller is None and hierarchy == "0" and not controllers:
            return path
        if controller is not None and controller in controllers.split(","):
            return path
    raise _Unusable(f"not in any {controller or 'cgroup2'} hierarchy")


def _probe_cgroup2(root: Path, prlimit: str | None) -> Cgroup2Backend:
    mount = _cgroup2_mount(root)
    own = _under(mount, own_cgroup(None))
    candidates = [own]
    if own != mount and _delegated(own.parent):
        candidates.append(own.parent)
    reasons = []
    for parent in candidates:
        try:
            return Cgroup2Backend(_setup_cgroup2(parent), prlimit)
        except (_Unusable, OSError) as exc:
            reasons.append(f"{parent}: {exc}")
    raise _Unusable("; ".join(reasons))


def _cgroup2_mount(root: Path) -> Path:
    """``root`` on a cgroup2-only host; ``root/unified`` in the hybrid layout."""
    for mount in (root, root / "unified"):
        if (mount / "cgroup.controllers").is_file():
            return mount
    raise _Unusable(f"no cgroup2 hierarchy at {root}")


def _setup_cgroup2(parent: Path) -> Path:
    available = set((parent / "cgroup.controllers").read_text().split())
    missing = {"memory", "pids"} - available
    if missing:
        raise _Unusable(f"controllers {', '.join(sorted(missing))} not available")
    _enable_controllers(parent)
    ours = parent / PARENT_NAME
    ours.mkdir(exist_ok=True)
    _enable_controllers(ours)
    _probe_child(ours, ("memory.max", "pids.max"))
    return ours


def _enable_controllers(directory: Path) -> None:
    enabled = set((directory / "cgroup.subtree_control").read_text().split())
    if not {"memory", "pids"} <= enabled:
        (directory / "cgroup.subtree_control").write_text("+memory +pids")


def _delegated(directory: Path) -> bool:
    """systemd marks a cgroup it delegated to a service with this extended attribute."""
    for attribute in ("trusted.delegate", "user.delegate"):
        with contextlib.suppress(OSError):
            if os.getxattr(directory, attribute) == b"1":
                return True
    return False


def _probe_cgroup1(root: Path, prlimit: str | None) -> Cgroup1Backend:
    parents = {}
    for controller, limit_file in (("memory", "memory.limit_in_bytes"), ("pids", "pids.max")):
        mount = root / controller
        if not (mount / "cgroup.procs").is_file() or (mount / "cgroup.controllers").exists():
            raise _Unusable(f"no cgroup v1 {controller} hierarchy at {mount}")
        parent = _under(mount, own_cgroup(controller)) / PARENT_NAME
        parent.mkdir(parents=True, exist_ok=True)
        _probe_child(parent, (limit_file,))
        parents[controller] = parent
    return Cgroup1Backend(parents["memory"], parents["pids"], prlimit)


def _under(mount: Path, cgroup_path: str) -> Path:
    path = (mount / cgroup_path.lstrip("/")).resolve()
    if not path.is_relative_to(mount.resolve()) or not path.is_dir():
        raise _Unusable(f"our cgroup {cgroup_path} is not visible under {mount}")
    return path


def _probe_child(parent: Path, files: Sequence[str]) -> None:
    """Create and remove a child cgroup: proves we may manage cgroups under ``parent``."""
    probe = parent / f".probe-{os.getpid()}-{time.monotonic_ns()}"
    probe.mkdir()
    try:
        missing = [name for name in files if not (probe / name).exists()]
        if missing:
            raise _Unusable(f"{parent} has no {', '.join(missing)}")
    finally:
        probe.rmdir()
