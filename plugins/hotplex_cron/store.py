"""The cron tables (``cron_jobs``, ``cron_runs``) and every query on them.

A run is claimed by inserting its row: ``(job, due_at)`` is unique, so a fire time runs at
most once, whichever daemon sees it and however often (a restart, two daemons on one
database, a lease taken over mid-way). Works on SQLite and PostgreSQL through
:class:`hotplex.storage.sql.SqlStorage`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from hotplex.storage.sql import SqlStorage

__all__ = ["CronStore", "JobRow", "RunRow", "create_tables_v1"]

_JSON = JSON().with_variant(JSONB(), "postgresql")
metadata = MetaData()

jobs_table = Table(
    "cron_jobs",
    metadata,
    Column("name", String, primary_key=True),
    Column("spec", _JSON, nullable=False),  # the validated CronJob, as JSON
    Column("source", String, nullable=False),  # config, cli, admin, chat, agent
    Column("created_by", Text),
    Column("owner_session", String),  # the agent session that scheduled it (quota)
    Column("enabled", Boolean, nullable=False),
    Column("anchor", Float, nullable=False),  # where an interval counts from
    Column("last_due", Float),  # the latest fire time handled (run or skipped)
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

runs_table = Table(
    "cron_runs",
    metadata,
    Column("id", String, primary_key=True),
    Column("job", String, nullable=False),
    Column("due_at", Float, nullable=False),
    Column("trigger", String, nullable=False),  # schedule, catch-up, manual, retry
    Column("status", String, nullable=False),  # running, ok, failed, timeout, skipped
    Column("holder", Text),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("attempts", Integer, nullable=False),
    Column("duration_ms", Integer),
    Column("cost_usd", Float),
    Column("excerpt", Text),
    Column("error", Text),
    Column("denied", _JSON),
    Column("session_id", String),
    UniqueConstraint("job", "due_at", name="uq_cron_runs_due"),
    Index("ix_cron_runs_job_started", "job", "started_at"),
)


def create_tables_v1(conn: Connection) -> None:
    """Migration ``cron`` 1. Frozen: later changes go into a new version (with the tables
    of that version spelled out there, not taken from the ones above)."""
    md = MetaData()
    for table in (jobs_table, runs_table):
        table.to_metadata(md).create(conn)


@dataclass(frozen=True, slots=True)
class JobRow:
    name: str
    spec: dict[str, Any]
    source: str
    created_by: str | None = None
    owner_session: str | None = None
    enabled: bool = True
    anchor: float = 0.0
    last_due: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class RunRow:
    id: str
    job: str
    due_at: float
    trigger: str
    status: str
    holder: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    duration_ms: int | None = None
    cost_usd: float | None = None
    excerpt: str | None = None
    error: str | None = None
    denied: list[str] = field(default_factory=list)
    session_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _job(row: Any) -> JobRow:
    return JobRow(**{f.name: row[f.name] for f in fields(JobRow)})


def _run(row: Any) -> RunRow:
    values = {f.name: row[f.name] for f in fields(RunRow)}
    values["denied"] = list(values["denied"] or [])
    return RunRow(**values)


class CronStore:
    def __init__(self, storage: SqlStorage, *, clock: Any = time.time) -> None:
        self.storage = storage
        self.clock = clock

    def _insert(self, table: Table) -> Any:
        return sqlite_insert(table) if self.storage.is_sqlite else pg_insert(table)

    # -- jobs ----------------------------------------------------------------------------

    async def jobs(self) -> list[JobRow]:
        async with self.storage.read() as conn:
            result = await conn.execute(select(jobs_table).order_by(jobs_table.c.name))
            return [_job(r) for r in result.mappings()]

    async def job(self, name: str) -> JobRow | None:
        async with self.storage.read() as conn:
            result = await conn.execute(select(jobs_table).where(jobs_table.c.name == name))
            row = result.mappings().first()
            return _job(row) if row is not None else None

    async def add(self, job: JobRow) -> bool:
        """Insert a new job; False when the name is taken."""
        async with self.storage.write() as conn:
            stmt = self._insert(jobs_table).on_conflict_do_nothing(index_elements=["name"])
            values = {f.name: getattr(job, f.name) for f in fields(JobRow)}
            return bool((await conn.execute(stmt.values(**values))).rowcount)

    async def change(self, name: str, **values: Any) -> bool:
        """Update some columns of a job (``updated_at`` too); False when there is none."""
        async with self.storage.write() as conn:
            stmt = (
                update(jobs_table)
                .where(jobs_table.c.name == name)
                .values(**values, updated_at=self.clock())
            )
            return bool((await conn.execute(stmt)).rowcount)

    async def remove(self, name: str) -> bool:
        async with self.storage.write() as conn:
            result = await conn.execute(delete(jobs_table).where(jobs_table.c.name == name))
            return bool(result.rowcount)

    async def advance(self, name: str, last_due: float) -> None:
        """Move a job's ``last_due`` forward (never back: two daemons may race)."""
        async with self.storage.write() as conn:
            column = jobs_table.c.last_due
            await conn.execute(
                update(jobs_table)
                .where(jobs_table.c.name == name)
                .where((column.is_(None)) | (column < last_due))
                .values(last_due=last_due)
            )

    async def count_owned(self, session_id: str) -> int:
        async with self.storage.read() as conn:
            result = await conn.execute(
                select(jobs_table.c.name).where(jobs_table.c.owner_session == session_id)
            )
            return len(result.all())

    # -- runs ----------------------------------------------------------------------------

    async def claim(
        self, job: str, due_at: float, *, trigger: str, holder: str, run: bool
    ) -> RunRow | None:
        """Insert the run of ``job`` at ``due_at`` (``running``, or ``skipped`` when it
        does not run); None when that time was claimed before (by anyone)."""
        now = self.clock()
        row = RunRow(
            id=uuid.uuid4().hex,
            job=job,
            due_at=due_at,
            trigger=trigger,
            status="running" if run else "skipped",
            holder=holder,
            started_at=now,
            finished_at=None if run else now,
            error=None if run else "missed: the daemon was not running it (misfire choice)",
        )
        async with self.storage.write() as conn:
            stmt = self._insert(runs_table).on_conflict_do_nothing(
                index_elements=["job", "due_at"]
            )
            inserted = (await conn.execute(stmt.values(**row.as_json()))).rowcount
        return row if inserted else None

    async def finish(self, run_id: str, **values: Any) -> None:
        async with self.storage.write() as conn:
            await conn.execute(
                update(runs_table)
                .where(runs_table.c.id == run_id)
                .values(**values, finished_at=self.clock())
            )

    async def progress(self, run_id: str, **values: Any) -> None:
        async with self.storage.write() as conn:
            await conn.execute(update(runs_table).where(runs_table.c.id == run_id).values(**values))

    async def runs(self, job: str, *, limit: int = 20) -> list[RunRow]:
        """A job's runs, newest fire time first."""
        async with self.storage.read() as conn:
            result = await conn.execute(
                select(runs_table)
                .where(runs_table.c.job == job)
                .order_by(runs_table.c.due_at.desc(), runs_table.c.started_at.desc())
                .limit(limit)
            )
            return [_run(r) for r in result.mappings()]

    async def last_finished(self, job: str) -> RunRow | None:
        async with self.storage.read() as conn:
            result = await conn.execute(
                select(runs_table)
                .where(runs_table.c.job == job, runs_table.c.status.not_in(("running", "skipped")))
                .order_by(runs_table.c.finished_at.desc())
                .limit(1)
            )
            row = result.mappings().first()
            return _run(row) if row is not None else None

    async def lost(self, older_than: float) -> list[RunRow]:
        """Runs still ``running`` that started before ``older_than`` (their daemon died)."""
        async with self.storage.read() as conn:
            result = await conn.execute(
                select(runs_table).where(
                    runs_table.c.status == "running", runs_table.c.started_at < older_than
                )
            )
            return [_run(r) for r in result.mappings()]

    async def trim(self, job: str, keep: int) -> None:
        """Delete a job's runs beyond the newest ``keep``."""
        async with self.storage.write() as conn:
            newest = (
                select(runs_table.c.id)
                .where(runs_table.c.job == job)
                .order_by(runs_table.c.due_at.desc())
                .limit(keep)
            )
            kept = [r[0] for r in (await conn.execute(newest)).all()]
            await conn.execute(
                delete(runs_table).where(runs_table.c.job == job, runs_table.c.id.not_in(kept))
            )

    async def forget_runs(self, job: str) -> None:
        async with self.storage.write() as conn:
            await conn.execute(delete(runs_table).where(runs_table.c.job == job))


def job_values(rows: Sequence[JobRow]) -> list[dict[str, Any]]:
    return [{f.name: getattr(r, f.name) for f in fields(JobRow)} for r in rows]
