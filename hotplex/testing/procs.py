"""The processes of a process group, read from ``/proc`` (Linux), for tests that check an
agent's process tree is gone."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GroupMember", "group_members", "wait_group_gone"]


@dataclass(frozen=True)
class GroupMember:
    """One process of a group: its pid, parent, state letter and start time (clock ticks
    after boot, so a reused pid is a different member)."""

    pid: int
    ppid: int
    state: str
    start: int

    @property
    def zombie(self) -> bool:
        return self.state == "Z"


def _member(entry: str) -> tuple[int, GroupMember] | None:
    try:
        fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[2]), GroupMember(int(entry), int(fields[1]), fields[0], int(fields[19]))
    except (OSError, IndexError, ValueError):
        return None  # gone meanwhile, or not a process


def group_members(pgid: int) -> list[GroupMember]:
    """Every process whose process group is ``pgid``, zombies included, by pid."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (found := _member(entry)) is not None and found[0] == pgid:
            members.append(found[1])
    return sorted(members, key=lambda m: m.pid)


def _leftovers(pgid: int) -> list[GroupMember]:
    # a zombie that another process will reap is gone for every purpose; one of ours is a leak
    return [m for m in group_members(pgid) if not m.zombie or m.ppid == os.getpid()]


async def wait_group_gone(pgid: int, timeout: float, *, step: float = 0.05) -> list[GroupMember]:
    """Poll until no live process (and no unreaped zombie child of this process) is left in
    group ``pgid``, for at most ``timeout`` seconds; returns what is left (empty when gone)."""
    # no event tells us that a process we did not start has exited: poll, a bounded number
    # of times
    for _ in range(max(1, round(timeout / step))):
        if not (left := _leftovers(pgid)):
            return left
        await asyncio.sleep(step)
    return _leftovers(pgid)
