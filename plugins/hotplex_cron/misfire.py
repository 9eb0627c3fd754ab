"""What to do with the fire times that came due: run them, or record them as missed.

A fire time no older than the grace (``plugins.cron.misfire_grace``) is on time and runs.
An older one was missed (the daemon was down, or no daemon held the scheduler lease), and
the job's ``misfire`` choice decides, exactly and visibly (each missed time gets a run row,
``skipped`` when it does not run):

- ``skip``: none of the missed times runs;
- ``once``: the latest missed time runs (unless a time on time runs anyway), the others
  are skipped;
- ``all``: every missed time runs, oldest first, at most ``plugins.cron.max_catchup`` of
  the most recent ones; older ones are left out (logged, and counted in ``left_out``).

Pure: "now" is an argument, so tests freeze it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from hotplex_cron.schedule import Schedule

__all__ = ["Due", "Misfire", "Plan", "plan"]

Misfire = Literal["skip", "once", "all"]


@dataclass(frozen=True, slots=True)
class Due:
    """One fire time and whether it runs; ``missed`` when it is older than the grace."""

    at: datetime
    run: bool
    missed: bool


@dataclass(frozen=True, slots=True)
class Plan:
    due: tuple[Due, ...]
    #: older missed times that were not even recorded (past the bound)
    left_out: bool

    @property
    def latest(self) -> datetime | None:
        return self.due[-1].at if self.due else None


def plan(
    schedule: Schedule,
    *,
    since: datetime,
    now: datetime,
    anchor: datetime,
    misfire: Misfire,
    grace: timedelta,
    limit: int,
) -> Plan:
    """The fire times in (``since``, ``now``] and what becomes of each."""
    times, more = schedule.due_between(since, now, anchor, limit=limit)
    on_time = [t for t in times if now - t <= grace]
    missed = [t for t in times if now - t > grace]
    running: set[datetime] = set(on_time)
    if misfire == "all":
        running.update(missed)
    elif misfire == "once" and missed and not on_time:
        running.add(missed[-1])
    due = tuple(Due(t, t in running, t in missed) for t in times)
    return Plan(due, more)
