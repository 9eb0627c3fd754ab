"""The section ``plugins.cron`` and the job model every way of adding a job validates with
(the config file, ``hotplex cron add``, ``/admin/v1/cron``, ``/cron`` in a chat, and the
agent tool ``schedule``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from hotplex.address import Address
from hotplex.config import Duration, PluginSettings, UnattendedPolicy
from hotplex_cron.schedule import parse_schedule, zone

__all__ = ["JOB_NAME", "TARGET_WORDS", "CronJob", "CronSettings"]

JOB_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
#: Targets that are not conversation addresses: the ``cron.run`` audit event (which
#: webhook subscriptions filtered on it receive) and the run history alone.
TARGET_WORDS = ("webhook", "storage")


class CronJob(PluginSettings):
    name: str = Field(description="Unique job name: lowercase letters, digits, '_', '.', '-'.")
    schedule: str = Field(
        description="'30 9 * * 1-5' (five-field cron), 'every 15m' (fixed interval) or "
        "'at 2026-12-24 09:00' (one time), in the job's time zone."
    )
    prompt: str = Field(
        description="What the agent is asked: a Jinja2 template with now, scheduled, job "
        "and last (the previous run's status, excerpt and error)."
    )
    deliver_to: tuple[str, ...] = Field(
        (),
        description="Where the answer goes: conversation addresses (slack:T01/C02, "
        "web:tester/s1), 'webhook' (the cron.run audit event) or 'storage' (history only).",
    )
    timezone: str = Field("UTC", description="IANA time zone of the schedule.")
    policy: UnattendedPolicy = Field("deny", description="Tool approvals for unattended runs.")
    enabled: bool = Field(True, description="Paused jobs stay listed but do not run.")
    work_dir: Path | None = Field(
        None, description="Existing absolute directory the agent works in (default: its own)."
    )
    session: Literal["fresh", "persistent"] = Field(
        "fresh",
        description="fresh: a new session each run, forgotten after it; persistent: one "
        "session that keeps its context from run to run.",
    )
    timeout: Duration = Field(1800.0, gt=0, description="A run longer than this is stopped.")
    retries: int = Field(0, ge=0, le=10, description="Tries again after a failed run.")
    backoff: Duration = Field(30.0, ge=0, description="Wait before the first retry; doubles.")
    misfire: Literal["skip", "once", "all"] = Field(
        "once",
        description="Fire times missed while no daemon ran it: skip them, run the latest "
        "once, or run all (at most plugins.cron.max_catchup).",
    )

    @field_validator("deliver_to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if value is None:
            return ()
        return (value,) if isinstance(value, str) else value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not JOB_NAME.fullmatch(value):
            raise ValueError(
                f"job name {value!r}: use 1-64 lowercase letters, digits, '_', '.' or '-'"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("deliver_to")
    @classmethod
    def _targets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        checked = []
        for target in value:
            checked.append(target if target in TARGET_WORDS else str(Address.parse(target)))
        return tuple(dict.fromkeys(checked))

    @field_validator("work_dir")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        if value is not None and not value.expanduser().is_absolute():
            raise ValueError(f"work_dir {value}: use an absolute path")
        return value.expanduser() if value is not None else None

    @model_validator(mode="after")
    def _schedule(self) -> CronJob:
        parse_schedule(self.schedule, self.timezone)
        return self


class CronSettings(PluginSettings):
    jobs: tuple[CronJob, ...] = Field((), description="Jobs defined in the config file.")
    misfire_grace: Duration = Field(
        60.0, ge=0, description="A fire time older than this when seen counts as missed."
    )
    max_catchup: int = Field(
        10, ge=1, le=1000, description="At most this many missed times run (misfire: all)."
    )
    max_concurrent: int = Field(4, ge=1, description="Runs at the same time, all jobs.")
    lease_ttl: Duration = Field(
        30.0, gt=0, description="Scheduler lease: another daemon takes over this long after "
        "the holder stops renewing it."
    )
    min_interval: Duration = Field(
        60.0, ge=0, description="Shortest interval between two fire times of a job."
    )
    agent_quota: int = Field(
        5, ge=0, description="Jobs one agent session may have through the schedule tool."
    )
    excerpt_chars: int = Field(500, ge=50, description="Characters of the answer kept per run.")
    keep_runs: int = Field(200, ge=1, description="Runs kept per job in the history.")

    @field_validator("jobs")
    @classmethod
    def _unique(cls, value: tuple[CronJob, ...]) -> tuple[CronJob, ...]:
        seen: set[str] = set()
        for job in value:
            if job.name in seen:
                raise ValueError(f"job {job.name!r} is defined twice")
            seen.add(job.name)
        return value
