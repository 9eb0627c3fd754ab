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
import logging
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from hotplex.confinement import LimitBackend
from hotplex.engine.cgroups import Cgroup1Backend, Cgroup2Backend
from hotplex.engine.rlimits import RlimitBackend

__all__ = ["BACKENDS", "detect_backend", "own_cgroup"]

log = logging.getLogger(__name__)

BACKENDS = ("cgroup2", "cgroup1", "rlimit")
PARENT_NAME = "hotplex"


class _Unusable(Exception):
    """A backend cannot work on this host; the message says why."""


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
