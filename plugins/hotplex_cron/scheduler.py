"""The scheduler: the lease, the planning of due fire times, and the runs it starts.

Only the daemon holding the lease ``cron:scheduler`` schedules: it plans each job's due
fire times (:mod:`.misfire`, from the job's ``last_due``), claims each one's run row,
starts the runs, and sets the job's next wake-up (:mod:`.timer`). Another daemon takes
over once the holder stops renewing (it died): it starts from the stored ``last_due``, and
a time the old holder claimed is not claimed again. The holder re-reads the jobs every
lease tick, so a job changed through another daemon is followed within ``lease_ttl / 3``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hotplex.aio import cancel_and_wait
from hotplex.errors import HotplexError
from hotplex_cron.misfire import plan
from hotplex_cron.runner import Outcome, Runner
from hotplex_cron.schedule import parse_schedule
from hotplex_cron.settings import CronJob, CronSettings
from hotplex_cron.store import CronStore, JobRow, RunRow

__all__ = ["LEASE", "Scheduler", "at", "job_spec"]

log = logging.getLogger(__name__)

LEASE = "cron:scheduler"


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def job_spec(row: JobRow) -> CronJob:
    return CronJob.model_validate(row.spec)


class Scheduler:
    def __init__(
        self,
        settings: CronSettings,
        store: CronStore,
        runner: Runner,
        *,
        clock: Callable[[], float] = time.time,
        holder: str | None = None,
    ) -> None:
        from hotplex_cron.timer import Timer  # APScheduler: only once cron starts

        self.settings = settings
        self.store = store
        self.runner = runner
        self.clock = clock
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.timer = Timer(self.wake)
        self.leader = False
        self._slots = asyncio.Semaphore(settings.max_concurrent)
        self._job_locks: dict[str, asyncio.Lock] = {}
        self._seen: dict[str, float] = {}  # job name -> updated_at the timer follows
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running: set[str] = set()  # run ids this daemon runs
        self._lease_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._lease_task = asyncio.create_task(self._hold_lease(), name="cron-lease")

    async def stop(self) -> None:
        await cancel_and_wait(self._lease_task)
        self.timer.shutdown()
        await cancel_and_wait(*self._tasks)
        if self.leader:
            with contextlib.suppress(HotplexError):
                await self.store.storage.release_lease(LEASE, self.holder)
        self.leader = False

    async def _hold_lease(self) -> None:
        storage = self.store.storage
        ttl = self.settings.lease_ttl
        while True:
            try:
                if self.leader:
                    if await storage.renew_lease(LEASE, self.holder, ttl):
                        await self.sync()
                    else:
                        self._lose()
                elif await storage.acquire_lease(LEASE, self.holder, ttl):
                    await self._gain()
            except HotplexError as exc:
                log.warning("cron scheduler lease: %s", exc)
            except Exception:
                log.exception("cron scheduler lease step failed")
            await asyncio.sleep(ttl / 3)

    async def _gain(self) -> None:
        log.info("cron: this daemon (%s) schedules the jobs", self.holder)
        self.leader = True
        self._seen.clear()
        await self._close_lost_runs()
        self.timer.start()
        await self.sync()

    def _lose(self) -> None:
        log.warning("cron: the scheduler lease was lost; another daemon schedules now")
        self.leader = False
        self.timer.pause()
        self._seen.clear()

    async def sync(self) -> None:
        """Follow every job whose row changed since this daemon last planned it."""
        rows = await self.store.jobs()
        names = {row.name for row in rows}
        for name in list(self._seen):
            if name not in names:
                self._seen.pop(name)
                self.timer.drop(name)
        for row in rows:
            if self._seen.get(row.name) != row.updated_at:
                try:
                    await self.plan(row)
                except HotplexError as exc:  # storage: the next tick tries again
                    log.warning("cron job %s: planning failed: %s", row.name, exc)
                except Exception:  # one broken job must not stop the others
                    self._seen[row.name] = row.updated_at
                    log.exception("cron job %s: planning failed", row.name)

    async def _close_lost_runs(self) -> None:
        now = self.clock()
        for run in await self.store.lost(now - 60.0):
            if run.id in self._running:
                continue
            row = await self.store.job(run.job)
            budget = 60.0
            if row is not None:
                job = job_spec(row)
                budget += job.timeout * (job.retries + 1) + job.backoff * 2**job.retries
            if (run.started_at or 0) < now - budget:
                await self.store.finish(
                    run.id, status="failed", error="lost: the daemon running it stopped"
                )

    # -- planning and firing -------------------------------------------------------------

    async def wake(self, name: str) -> None:
        """APScheduler's call at a job's fire time."""
        if not self.leader:
            return
        row = await self.store.job(name)
        if row is None:
            self.timer.drop(name)
            return
        try:
            await self.plan(row)
        except Exception:
            log.exception("cron job %s: planning failed", name)

    async def plan(self, row: JobRow) -> None:
        self._seen[row.name] = row.updated_at
        if not row.enabled:
            self.timer.drop(row.name)
            return
        job = job_spec(row)
        schedule = parse_schedule(job.schedule, job.timezone)
        now = at(self.clock())
        since = at(row.last_due if row.last_due is not None else row.anchor)
        decided = plan(
            schedule,
            since=since,
            now=now,
            anchor=at(row.anchor),
            misfire=job.misfire,
            grace=timedelta(seconds=self.settings.misfire_grace),
            limit=self.settings.max_catchup,
        )
        if decided.left_out:
            log.warning("cron job %s: missed fire times older than the bound left out", job.name)
        claimed: list[RunRow] = []
        for due in decided.due:
            trigger = "catch-up" if due.missed else "schedule"
            run = await self.store.claim(
                job.name, due.at.timestamp(), trigger=trigger, holder=self.holder, run=due.run
            )
            if run is not None and due.run:
                claimed.append(run)
            elif run is not None:
                log.info("cron job %s: %s missed (misfire: %s)", job.name, due.at, job.misfire)
        if decided.latest is not None:
            await self.store.advance(job.name, decided.latest.timestamp())
        if claimed:
            self._spawn(self._run_in_order(job, claimed))
        after = max(now, decided.latest or now)
        self.timer.set(job.name, schedule.next_after(after, at(row.anchor)))

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run_in_order(self, job: CronJob, runs: list[RunRow]) -> list[Outcome]:
        """A job's runs one after another (a run never overlaps the job's previous one)."""
        lock = self._job_locks.setdefault(job.name, asyncio.Lock())
        outcomes = []
        async with lock:
            for run in runs:
                self._running.add(run.id)
                try:
                    async with self._slots:
                        outcomes.append(await self.runner.run(job, run))
                finally:
                    self._running.discard(run.id)
        return outcomes

    async def run(self, job: CronJob, runs: list[RunRow]) -> asyncio.Task[list[Outcome]]:
        """Start ``runs`` of ``job`` (claimed already), in order; the task that runs them."""
        return self._spawn(self._run_in_order(job, runs))

    async def changed(self, name: str) -> None:
        """Follow a job changed on this daemon at once (if this daemon schedules)."""
        if self.leader:
            self._seen.pop(name, None)
            row = await self.store.job(name)
            if row is None:
                self.timer.drop(name)
            else:
                await self.plan(row)

    def status(self) -> dict[str, Any]:
        return {"leader": self.leader, "holder": self.holder, "running": len(self._running)}
