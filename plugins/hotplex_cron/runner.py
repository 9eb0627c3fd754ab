"""One claimed run of a job: its prompt through core's chat bridge (platform ``cron``), the
answer to its targets, the outcome in its run row and in the ``cron.run`` audit event.

A run tries ``1 + retries`` times, waiting ``backoff`` (doubling) between tries; each try
is stopped after the job's ``timeout`` (interrupted, then its outcome is ``timeout``). A
fresh-session job forgets each try's session afterwards (``Engine.forget``): nothing of it
stays. The targets hear how it went, a failure or a denied tool included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hotplex.address import Address
from hotplex.chat import CHAT_BRIDGE, DELIVERY
from hotplex.context import PluginContext
from hotplex.engine import ENGINE
from hotplex.errors import HotplexError
from hotplex.events import AuditEvent
from hotplex.runtime import RUNTIME
from hotplex.templating import TEMPLATES
from hotplex.types import IncomingMessage
from hotplex_cron.adapter import PLATFORM, WORKSPACE, CronAdapter
from hotplex_cron.schedule import zone
from hotplex_cron.settings import TARGET_WORDS, CronJob, CronSettings
from hotplex_cron.store import CronStore, RunRow
from hotplex_cron.turns import Collected, collect, render_prompt

__all__ = ["Outcome", "Runner", "address_of"]

log = logging.getLogger(__name__)

REPORT_TEMPLATE = "cron/text/run.md.j2"


def address_of(job: CronJob, run_id: str, attempt: int) -> str:
    """The conversation of a try: one per job (persistent) or one per try (fresh)."""
    if job.session == "persistent":
        return str(Address(PLATFORM, WORKSPACE, job.name))
    return str(Address(PLATFORM, WORKSPACE, job.name, f"{run_id[:16]}-{attempt}"))


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # ok, failed, timeout
    text: str
    cost_usd: float
    error: str | None
    denied: tuple[str, ...]
    session_id: str | None
    attempts: int
    duration_ms: int


class Runner:
    def __init__(
        self,
        ctx: PluginContext,
        settings: CronSettings,
        store: CronStore,
        adapter: CronAdapter,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ctx = ctx
        self._settings = settings
        self._store = store
        self._adapter = adapter
        self._clock = clock

    async def run(self, job: CronJob, run: RunRow) -> Outcome:
        """Run a claimed run to its end (never raises but on cancellation)."""
        started = time.monotonic()
        try:
            outcome = await self._tries(job, run, started)
        except asyncio.CancelledError:
            await self._store.finish(run.id, status="failed", error="the daemon stopped")
            raise
        except Exception as exc:  # a bug must not leave the run "running" forever
            log.exception("cron run %s of %s failed", run.id, job.name)
            outcome = Outcome("failed", "", 0.0, f"{type(exc).__name__}: {exc}", (), None, 1, 0)
        await self._store.finish(
            run.id,
            status=outcome.status,
            attempts=outcome.attempts,
            duration_ms=outcome.duration_ms,
            cost_usd=outcome.cost_usd,
            excerpt=outcome.text[: self._settings.excerpt_chars] or None,
            error=outcome.error,
            denied=list(outcome.denied),
            session_id=outcome.session_id,
        )
        await self._store.trim(job.name, self._settings.keep_runs)
        await self._report(job, run, outcome)
        return outcome

    async def _tries(self, job: CronJob, run: RunRow, started: float) -> Outcome:
        prompt = await self._prompt(job, run)
        collected = Collected()
        attempt = 0
        status = "failed"
        error: str | None = None
        for attempt in range(1, job.retries + 2):
            if attempt > 1:
                await asyncio.sleep(job.backoff * 2 ** (attempt - 2))
            await self._store.progress(run.id, attempts=attempt)
            collected = Collected()
            status, error = await self._try(job, run, attempt, prompt, collected)
            if status == "ok":
                break
            log.info("cron job %s try %d: %s (%s)", job.name, attempt, status, error)
        return Outcome(
            status,
            collected.text,
            collected.cost_usd,
            error,
            tuple(dict.fromkeys(collected.denied)),
            collected.session_id,
            attempt,
            int((time.monotonic() - started) * 1000),
        )

    async def _prompt(self, job: CronJob, run: RunRow) -> str:
        last = await self._store.last_finished(job.name)
        local = zone(job.timezone)
        values: dict[str, Any] = {
            "job": job.name,
            "now": datetime.fromtimestamp(self._clock(), UTC).astimezone(local),
            "scheduled": datetime.fromtimestamp(run.due_at, UTC).astimezone(local),
            "trigger": run.trigger,
            "last": None
            if last is None
            else {
                "status": last.status,
                "excerpt": last.excerpt or "",
                "error": last.error or "",
                "finished_at": datetime.fromtimestamp(last.finished_at or 0, UTC).astimezone(
                    local
                ),
            },
        }
        return render_prompt(job.prompt, values)

    async def _try(
        self, job: CronJob, run: RunRow, attempt: int, prompt: str, collected: Collected
    ) -> tuple[str, str | None]:
        services = self._ctx.services
        bridge = services.get(CHAT_BRIDGE)
        engine = services.get(ENGINE)
        address = address_of(job, run.id, attempt)
        message = IncomingMessage(
            address=address,
            text=prompt,
            user=f"cron:{job.name}",
            platform=PLATFORM,
            event_id=f"{run.id}:{attempt}",
            direct=True,
        )
        facts = {"unattended": job.policy, "work_dir": job.work_dir}
        try:
            handled = await asyncio.wait_for(
                bridge.handle(
                    self._adapter, message, render=False, facts=facts, settle_pending=False
                ),
                job.timeout,
            )
        except TimeoutError:
            return "timeout", f"the prompt waited longer than {job.timeout:g} s for approval"
        except HotplexError as exc:
            return "failed", str(exc)
        session_id = engine.session_id(handled.session_key)
        collected.session_id = session_id
        try:
            if handled.turn is None:
                return "failed", handled.reply or f"the prompt was {handled.outcome}"
            finished = await collect(handled.turn, collected, job.timeout)
            if not finished:
                await engine.interrupt(session_id)
                await collect(handled.turn, collected, engine.settings.engine.kill_grace + 5.0)
                return "timeout", f"stopped after the timeout ({job.timeout:g} s)"
            if collected.status == "ok" and not collected.errors:
                return "ok", None
            return "failed", "; ".join(collected.errors) or f"the turn ended {collected.status}"
        finally:
            if job.session == "fresh":
                with contextlib.suppress(HotplexError):
                    await engine.forget(session_id)

    # -- the outcome, where people look --------------------------------------------------

    async def _report(self, job: CronJob, run: RunRow, outcome: Outcome) -> None:
        text = self.report_text(job, run, outcome)
        router = self._ctx.services.get(DELIVERY)
        for target in job.deliver_to:
            if target in TARGET_WORDS:
                continue
            try:
                await router.send(target, text)
            except Exception as exc:  # audited as delivery.failed by the router
                log.warning("cron job %s: delivery to %s failed: %s", job.name, target, exc)
        await self._audit(job, run, outcome)

    def report_text(self, job: CronJob, run: RunRow, outcome: Outcome) -> str:
        templates = self._ctx.services.find(TEMPLATES)
        values = {
            "job": job.name,
            "trigger": run.trigger,
            "status": outcome.status,
            "text": outcome.text,
            "error": outcome.error,
            "denied": list(outcome.denied),
            "seconds": outcome.duration_ms / 1000,
            "cost_usd": outcome.cost_usd,
            "attempts": outcome.attempts,
        }
        if templates is not None:
            with contextlib.suppress(Exception):
                return templates.get_template(REPORT_TEMPLATE).render(**values).strip()
        return outcome.text or f"cron job {job.name}: {outcome.status} ({outcome.error})"

    async def _audit(self, job: CronJob, run: RunRow, outcome: Outcome) -> None:
        runtime = self._ctx.services.find(RUNTIME)
        if runtime is None:
            return
        data = {
            "job": job.name,
            "run_id": run.id,
            "trigger": run.trigger,
            "due_at": run.due_at,
            "status": outcome.status,
            "excerpt": outcome.text[: self._settings.excerpt_chars],
            "error": outcome.error,
            "denied": list(outcome.denied),
            "duration_ms": outcome.duration_ms,
            "cost_usd": outcome.cost_usd,
            "attempts": outcome.attempts,
            "deliver_to": list(job.deliver_to),
        }
        event = AuditEvent(
            "cron.run", data, session_id=outcome.session_id, actor=f"cron:{job.name}"
        )
        try:
            await runtime.emit(event)
        except Exception:
            log.exception("auditing cron run %s failed", run.id)
