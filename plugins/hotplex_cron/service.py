"""The cron service (``CRON``): the jobs and their management, for the CLI (through the
admin API), the chat command and the agent tool; the scheduling is
:class:`~hotplex_cron.scheduler.Scheduler`'s. Any daemon runs ``cron run JOB`` itself.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from hotplex.address import Address, session_key
from hotplex.chat import DELIVERY
from hotplex.context import PluginContext
from hotplex.errors import HotplexError
from hotplex_cron.adapter import CronAdapter
from hotplex_cron.keys import CronError, NotFound
from hotplex_cron.runner import Runner, address_of
from hotplex_cron.schedule import Schedule, parse_schedule
from hotplex_cron.scheduler import Scheduler, at, job_spec
from hotplex_cron.settings import TARGET_WORDS, CronJob, CronSettings
from hotplex_cron.store import CronStore, JobRow

__all__ = ["CronService"]

log = logging.getLogger(__name__)


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
        self.adapter = CronAdapter(self.forward)
        runner = Runner(ctx, settings, store, self.adapter, clock=clock)
        self.scheduler = Scheduler(settings, store, runner, clock=clock, holder=holder)

    @property
    def leader(self) -> bool:
        """Whether this daemon schedules (holds the lease)."""
        return self.scheduler.leader

    @property
    def holder(self) -> str:
        return self.scheduler.holder

    async def start(self) -> None:
        await self.reconcile()
        self.scheduler.start()

    async def stop(self) -> None:
        await self.scheduler.stop()

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
        await self.scheduler.changed(job.name)
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
        before = job_spec(row)
        if (before.session, before.work_dir) != (job.session, job.work_dir):
            await self._forget_session(before)  # it worked elsewhere, or is not wanted
        await self.store.change(name, **values)
        await self.scheduler.changed(name)
        return await self.describe(name)

    async def remove(self, name: str) -> None:
        row = await self._row(name)
        self._not_config(row, "remove")
        await self.store.remove(name)
        await self.store.forget_runs(name)
        await self._forget_session(job_spec(row))
        await self.scheduler.changed(name)

    async def _forget_session(self, job: CronJob) -> None:
        """End a persistent job's session (its context goes with it)."""
        if job.session != "persistent":
            return
        from hotplex.engine import ENGINE

        engine = self.ctx.services.find(ENGINE)
        if engine is None:
            return
        key = session_key(Address.parse(address_of(job, "", 0)))
        try:
            await engine.forget(engine.session_id(key))
        except HotplexError as exc:
            log.warning("cron job %s: its session was not forgotten: %s", job.name, exc)

    async def pause(self, name: str) -> dict[str, Any]:
        await self._row(name)
        await self.store.change(name, enabled=False)
        await self.scheduler.changed(name)
        return await self.describe(name)

    async def resume(self, name: str) -> dict[str, Any]:
        """Run again from now on: the times it was paused are not missed times."""
        await self._row(name)
        await self.store.change(name, enabled=True, last_due=self.clock())
        await self.scheduler.changed(name)
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
        task = await self.scheduler.run(job, [run])
        if wait:
            await task
        return {"run_id": run.id, "name": name}

    async def describe(self, name: str) -> dict[str, Any]:
        row = await self._row(name)
        return await self._describe(row)

    async def _describe(self, row: JobRow) -> dict[str, Any]:
        job = job_spec(row)
        schedule: Schedule = parse_schedule(job.schedule, job.timezone)
        next_fire = None
        if row.enabled:
            after = max(self.clock(), row.last_due or row.anchor)
            moment = schedule.next_after(at(after), at(row.anchor))
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
        return self.scheduler.status()

