"""The one module that touches APScheduler 3: it wakes us at each job's next fire time.

Fire times and misfires are decided by :mod:`hotplex_cron.schedule` and
:mod:`hotplex_cron.misfire` (with an injected clock; APScheduler's timers ignore a frozen
one), so APScheduler holds one ``date`` trigger per job in an in-memory job store, loaded
from our tables, and calls ``wake(job name)`` when it is due. Its own misfire handling is
off (``misfire_grace_time=None``: a late wake-up still wakes us; we decide) and
``coalesce`` on, so a blocked event loop never silently drops a run.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.date import DateTrigger

__all__ = ["Timer"]

log = logging.getLogger(__name__)

Wake = Callable[[str], Awaitable[None]]


class Timer:
    """One wake-up per job; running only while this daemon holds the scheduler lease."""

    def __init__(self, wake: Wake) -> None:
        self._wake = wake
        self._scheduler = AsyncIOScheduler(
            jobstores={"default": MemoryJobStore()},
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
            timezone="UTC",
        )
        self._started = False

    @property
    def running(self) -> bool:
        return self._started and self._scheduler.state == STATE_RUNNING

    def start(self) -> None:
        if not self._started:
            self._scheduler.start()
            self._started = True
        else:
            self._scheduler.resume()

    def pause(self) -> None:
        """Stop waking (the lease was lost); the wake-ups are dropped."""
        if self._started:
            self._scheduler.remove_all_jobs()
            self._scheduler.pause()

    def shutdown(self) -> None:
        if self._started:
            self._scheduler.shutdown(wait=False)
            self._started = False

    def set(self, name: str, when: datetime | None) -> None:
        """Wake for ``name`` at ``when`` (None: not any more)."""
        if when is None:
            self.drop(name)
            return
        self._scheduler.add_job(
            self._wake,
            DateTrigger(run_date=when),
            args=(name,),
            id=name,
            name=f"cron:{name}",
            replace_existing=True,
        )

    def drop(self, name: str) -> None:
        if self._scheduler.get_job(name) is not None:
            self._scheduler.remove_job(name)

    def next_wake(self, name: str) -> datetime | None:
        job = self._scheduler.get_job(name)
        return job.next_run_time if job is not None else None
