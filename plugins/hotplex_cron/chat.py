"""Cron from a conversation: the chat command ``/cron`` and the agent tool ``schedule``.

``/cron list``, ``/cron history NAME`` are for anyone who may talk to the bot; ``/cron add
NAME <schedule> | <prompt>``, ``run``, ``pause``, ``resume`` and ``remove`` only for the
identities in ``security.owners``. A job added here answers into this conversation.

The agent tool ``schedule`` lets an agent schedule a follow-up of its own work: a job that
runs a prompt later (once, or on a schedule) in a fresh session working in the calling
session's directory, answering into the calling conversation, with the policy ``deny``
(an agent cannot grant itself tools). At most ``plugins.cron.agent_quota`` such jobs per
session; a cron run's own agent cannot schedule (runs would breed runs).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotplex.commands import ChatCommandContext
from hotplex.records import AgentToolSpec, ChatCommandSpec, ToolCallContext
from hotplex_cron.adapter import PLATFORM
from hotplex_cron.keys import CRON, CronError

if TYPE_CHECKING:
    from hotplex_cron.service import CronService

__all__ = ["command", "schedule_tool"]

USAGE = (
    "usage: /cron list | history NAME | run NAME | pause NAME | resume NAME | remove NAME"
    " | add NAME <schedule> | <prompt>"
)
CHANGES = ("add", "run", "pause", "resume", "remove")


def _service(services: Any) -> CronService:
    service: CronService | None = services.find(CRON) if services is not None else None
    if service is None:
        raise CronError("cron is not running on this daemon")
    return service


def _line(job: dict[str, Any]) -> str:
    last = job["last_run"]
    state = "enabled" if job["enabled"] else "paused"
    return (
        f"{job['name']} ({job['source']}, {state}): {job['job']['schedule']} "
        f"{job['job']['timezone']}; next {job['next_fire'] or '-'}; "
        f"last {last['status'] if last else '-'}"
    )


async def _cron(args: str, ctx: ChatCommandContext) -> str:
    verb, _, rest = args.strip().partition(" ")
    rest = rest.strip()
    try:
        service = _service(ctx.services)
        if verb in CHANGES:
            from hotplex.runtime import RUNTIME

            owners = ctx.services.get(RUNTIME).settings.security.owners
            if ctx.user not in owners:
                return f"/cron {verb} is for owners only (security.owners)."
        if verb in ("", "list"):
            jobs = await service.list_jobs()
            return "\n".join(_line(j) for j in jobs) if jobs else "No cron jobs."
        if verb == "add":
            head, bar, prompt = rest.partition("|")
            name, _, schedule = head.strip().partition(" ")
            if not bar or not name or not schedule.strip() or not prompt.strip():
                return USAGE
            job = await service.add(
                {
                    "name": name,
                    "schedule": schedule.strip(),
                    "prompt": prompt.strip(),
                    "deliver_to": [ctx.address],
                },
                source="chat",
                created_by=ctx.user,
            )
            return "Added " + _line(job)
        if not rest:
            return USAGE
        if verb == "history":
            runs = await service.history(rest, limit=10)
            return "\n".join(
                f"{r['trigger']} {r['status']}: {(r['error'] or r['excerpt'] or '')[:80]}"
                for r in runs
            ) or f"{rest}: no runs yet"
        if verb == "run":
            started = await service.run_now(rest)
            return f"{rest}: run {started['run_id']} started"
        if verb == "remove":
            await service.remove(rest)
            return f"{rest}: removed"
        if verb in ("pause", "resume"):
            job = await (service.pause(rest) if verb == "pause" else service.resume(rest))
            return _line(job)
    except CronError as exc:
        return str(exc)
    return USAGE


def command() -> ChatCommandSpec:
    return ChatCommandSpec("cron", "Scheduled agent tasks: list, history, add, run", _cron)


SCHEMA = {
    "type": "object",
    "properties": {
        "schedule": {
            "type": "string",
            "description": "When: 'at 2026-12-24 09:00' (once), 'every 2h' or a five-field "
            "cron expression such as '0 9 * * 1-5'.",
        },
        "prompt": {"type": "string", "description": "What you will be asked then."},
        "timezone": {"type": "string", "description": "IANA time zone (default UTC)."},
        "name": {"type": "string", "description": "A name for the job (optional)."},
    },
    "required": ["schedule", "prompt"],
    "additionalProperties": False,
}


async def _schedule(args: dict[str, Any], ctx: ToolCallContext) -> str:
    services = ctx.plugin_context.services
    service = _service(services)
    if ctx.address is not None and ctx.address.startswith(f"{PLATFORM}:"):
        # a run's session is new each time, so a quota per session would not bound a job
        # that schedules another one on every run
        raise CronError("a cron run cannot schedule jobs")
    quota = service.settings.agent_quota
    if await service.store.count_owned(ctx.session_id) >= quota:
        raise CronError(
            f"this session has {quota} scheduled jobs already (plugins.cron.agent_quota)"
        )
    from hotplex.engine import ENGINE

    sessions = services.get(ENGINE).sessions()
    info = next((s for s in sessions if s.session_id == ctx.session_id), None)
    values: dict[str, Any] = {
        "name": args.get("name") or f"followup-{uuid.uuid4().hex[:8]}",
        "schedule": args["schedule"],
        "prompt": args["prompt"],
        "timezone": args.get("timezone") or "UTC",
        "deliver_to": [ctx.address] if ctx.address else ["storage"],
        "policy": "deny",
        "session": "fresh",
    }
    if info is not None and await asyncio.to_thread(Path(info.work_dir).is_dir):
        values["work_dir"] = info.work_dir
    job = await service.add(
        values, source="agent", created_by=ctx.address, owner_session=ctx.session_id
    )
    return f"Scheduled {job['name']}: next run {job['next_fire'] or 'never'}."


def schedule_tool() -> AgentToolSpec:
    return AgentToolSpec(
        "schedule",
        "Schedule a follow-up of your work: the prompt runs later (once or on a schedule) "
        "in a new session in this working directory, and its answer comes to this "
        "conversation.",
        SCHEMA,
        _schedule,
    )
