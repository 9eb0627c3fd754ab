"""What an agent is started under: its resource limits and the backend that applies them.

Part of the contract (:class:`~hotplex.types.AgentStartSpec` carries a :class:`Confinement`);
the backends themselves live in :mod:`hotplex.engine.limits`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["AgentLimits", "Confinement", "LimitBackend"]


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
