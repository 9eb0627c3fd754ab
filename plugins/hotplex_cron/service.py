"""The cron service (``CRON``): jobs, the scheduler lease, and the runs it starts.

Only the daemon holding the lease ``cron:scheduler`` schedules: it plans each job's due
fire times (:mod:`.misfire`, from the job's ``last_due``), claims each one's run row,
starts the runs, and sets the job's next wake-up (:mod:`.timer`). Another daemon takes
over once the holder stops renewing (it died): it starts from the stored ``last_due``, and
a time the old holder claimed is not claimed again. The holder re-reads the jobs every
lease tick, so a job changed through another daemon is followed within ``lease_ttl / 3``.
Any daemon runs ``cron run JOB`` itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from hotplex.aio import cancel_and_wait
from hotplex.chat import DELIVERY
from hotplex.context import PluginContext
from hotplex.errors import HotplexError
from hotplex_cron.adapter import CronAdapter
from hotplex_cron.keys import CRON, CronError, NotFound
from hotplex_cron.misfire import plan
from hotplex_cron.runner import Outcome, Runner
from hotplex_cron.schedule import Schedule, parse_schedule
from hotplex_cron.settings import TARGET_WORDS, CronJob, CronSettings
from hotplex_cron.store import CronStore, JobRow, RunRow

__all__ = ["CRON", "CronError", "CronService", "NotFound"]

log = logging.getLogger(__name__)

LEASE = "cron:scheduler"


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def job_spec(row: JobRow) -> CronJob:
    return CronJob.model_validate(row.spec)


class CronService:
    def __init__(
        self,
        ctx: PluginContext,
        settings: CronSettings,
        store: CronStore,
        *,
        clock: Callable[[], float] = time.time,
        holder: str | None = None,
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self.store = store
        self.clock = clock
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.adapter = CronAdapter(self.forward)
        self.runner = Runner(ctx, settings, store, self.adapter, clock=clock)
        from hotplex_cron.timer import Timer  # APScheduler: only once cron starts

        self.timer = Timer(self.wake)
        self.leader = False
        self._slots = asyncio.Semaphore(settings.max_concurrent)
        self._job_locks: dict[str, asyncio.Lock] = {}
        self._seen: dict[str, float] = {}  # job name -> updated_at the timer follows
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running: set[str] = set()  # run ids this daemon runs
        self._lease_task: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        await self.reconcile()
        self._lease_task = asyncio.create_task(self._hold_lease(), name="cron-lease")

    async def stop(self) -> None:
        await cancel_and_wait(self._lease_task)
        self.timer.shutdown()
        await cancel_and_wait(*self._tasks)
        if self.leader:
            with contextlib.suppress(HotplexError):
                await self.store.storage.release_lease(LEASE, self.holder)
        self.leader = False

    async def reconcile(self) -> None:
        """Make the stored config-file jobs what the config file says: new ones added,
        changed ones updated, ones no longer in the file removed. Jobs added another way
        are left alone; a config job's name taken by such a job is an error in the log."""
        now = self.clock()
        stored = {row.name: row for row in await self.store.jobs()}
        wanted = {job.name: job for job in self.settings.jobs}
        for name, job in wanted.items():
            spec = job.model_dump(mode="json")
            row = stored.get(name)
            if row is None:
                await self.store.add(
                    JobRow(name, spec, "config", "config", None, job.enabled, now, None, now, now)
                )
            elif row.source != "config":
                log.error("cron job %r of the config file is taken by a %s job", name, row.source)
            elif row.spec != spec:
                changes: dict[str, Any] = {"spec": spec, "enabled": job.enabled}
                if row.spec.get("schedule") != spec["schedule"] or row.spec.get(
                    "timezone"
                ) != spec["timezone"]:
                    changes.update(anchor=now, last_due=now)
                await self.store.change(name, **changes)
        for name, row in stored.items():
            if row.source == "config" and name not in wanted:
                await self.store.remove(name)

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
                await self._plan(row)

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
            await self._plan(row)
        except Exception:
            log.exception("cron job %s: planning failed", name)

    async def _plan(self, row: JobRow) -> None:
        self._seen[row.name] = row.updated_at
        if not row.enabled:
            self.timer.drop(row.name)
            return
        job = job_spec(row)
        schedule = parse_schedule(job.schedule, job.timezone)
        now = _at(self.clock())
        since = _at(row.last_due if row.last_due is not None else row.anchor)
        decided = plan(
            schedule,
            since=since,
            now=now,
            anchor=_at(row.anchor),
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
        self.timer.set(job.name, schedule.next_after(after, _at(row.anchor)))

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

    async def forward(self, name: str, text: str) -> None:
        """What core renders into a cron conversation by itself (a run a restart
        interrupted, a replayed message) goes to the job's conversation targets."""
        row = await self.store.job(name)
        if row is None:
            return
        router = self.ctx.services.get(DELIVERY)
        for target in job_spec(row).deliver_to:
            if target not in TARGET_WORDS:
                with contextlib.suppress(Exception):
                    await router.send(target, text)

    # -- management (CLI, admin API, chat command, agent tool) -----------------------------

    def validate(self, values: Mapping[str, Any]) -> CronJob:
        try:
            job = CronJob.model_validate(dict(values))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'job'}: {e['msg']}" for e in exc.errors()
            )
            raise CronError(problems) from None
        schedule = parse_schedule(job.schedule, job.timezone)
        if schedule.interval is not None and schedule.interval < self.settings.min_interval:
            raise CronError(
                f"schedule {job.schedule!r}: the shortest interval is "
                f"{self.settings.min_interval:g} s (plugins.cron.min_interval)"
            )
        return job

    async def add(
        self,
        values: Mapping[str, Any],
        *,
        source: str,
        created_by: str | None = None,
        owner_session: str | None = None,
    ) -> dict[str, Any]:
        job = self.validate(values)
        now = self.clock()
        row = JobRow(
            job.name,
            job.model_dump(mode="json"),
            source,
            created_by,
            owner_session,
            job.enabled,
            now,
            None,
            now,
            now,
        )
        if not await self.store.add(row):
            raise CronError(f"a job named {job.name!r} exists already (edit or remove it)")
        await self._changed(job.name)
        return await self.describe(job.name)

    async def _row(self, name: str) -> JobRow:
        row = await self.store.job(name)
        if row is None:
            raise NotFound(f"no cron job named {name!r}")
        return row

    def _not_config(self, row: JobRow, verb: str) -> None:
        if row.source == "config":
            raise CronError(
                f"job {row.name!r} is defined in the config file: {verb} it there "
                "(pause and resume work here)"
            )

    async def edit(self, name: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        row = await self._row(name)
        self._not_config(row, "change")
        if "name" in changes and changes["name"] != name:
            raise CronError("a job's name cannot change; add a new job and remove this one")
        job = self.validate({**row.spec, **changes})
        values: dict[str, Any] = {"spec": job.model_dump(mode="json"), "enabled": job.enabled}
        if (job.schedule, job.timezone) != (row.spec["schedule"], row.spec["timezone"]):
            now = self.clock()
            values.update(anchor=now, last_due=now)
        await self.store.change(name, **values)
        await self._changed(name)
        return await self.describe(name)

    async def remove(self, name: str) -> None:
        row = await self._row(name)
        self._not_config(row, "remove")
        await self.store.remove(name)
        await self.store.forget_runs(name)
        await self._changed(name)

    async def pause(self, name: str) -> dict[str, Any]:
        await self._row(name)
        await self.store.change(name, enabled=False)
        await self._changed(name)
        return await self.describe(name)

    async def resume(self, name: str) -> dict[str, Any]:
        """Run again from now on: the times it was paused are not missed times."""
        await self._row(name)
        await self.store.change(name, enabled=True, last_due=self.clock())
        await self._changed(name)
        return await self.describe(name)

    async def run_now(self, name: str, *, wait: bool = False) -> dict[str, Any]:
        """Fire the job now, on this daemon (paused or not)."""
        row = await self._row(name)
        job = job_spec(row)
        run = await self.store.claim(
            name, self.clock(), trigger="manual", holder=self.holder, run=True
        )
        if run is None:
            raise CronError("a run was just started; try again")
        task = self._spawn(self._run_in_order(job, [run]))
        if wait:
            await task
        return {"run_id": run.id, "name": name}

    async def _changed(self, name: str) -> None:
        if self.leader:
            self._seen.pop(name, None)
            row = await self.store.job(name)
            if row is None:
                self.timer.drop(name)
            else:
                await self._plan(row)

    async def describe(self, name: str) -> dict[str, Any]:
        row = await self._row(name)
        return await self._describe(row)

    async def _describe(self, row: JobRow) -> dict[str, Any]:
        job = job_spec(row)
        schedule: Schedule = parse_schedule(job.schedule, job.timezone)
        next_fire = None
        if row.enabled:
            after = max(self.clock(), row.last_due or row.anchor)
            moment = schedule.next_after(_at(after), _at(row.anchor))
            next_fire = (
                moment.astimezone(schedule.tz).isoformat(timespec="seconds") if moment else None
            )
        last = await self.store.runs(row.name, limit=1)
        return {
            "name": row.name,
            "source": row.source,
            "created_by": row.created_by,
            "enabled": row.enabled,
            "kind": schedule.kind,
            "next_fire": next_fire,
            "last_run": last[0].as_json() if last else None,
            "job": job.model_dump(mode="json"),
        }

    async def list_jobs(self) -> list[dict[str, Any]]:
        return [await self._describe(row) for row in await self.store.jobs()]

    async def history(self, name: str, *, limit: int = 20) -> list[dict[str, Any]]:
        await self._row(name)
        return [run.as_json() for run in await self.store.runs(name, limit=limit)]

    def status(self) -> dict[str, Any]:
        return {"leader": self.leader, "holder": self.holder, "running": len(self._running)}

