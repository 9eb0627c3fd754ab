"""Durability and concurrency: SQLite settings, the write lock taken at BEGIN, SIGKILL of a
writer, concurrent writers in two processes, and a full disk."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from storage_support import WORKER, pg_admin, run_worker

from hotplex.errors import ConfigError
from hotplex.events import agent_event
from hotplex.storage.migrator import PG_LOCK_KEY
from hotplex.storage.sql import SqlStorage


async def test_backend_settings(storage: SqlStorage, db_url: str) -> None:
    async with storage.read() as conn:
        if storage.is_sqlite:
            pragmas = {
                name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }
            assert pragmas == {
                "journal_mode": "wal",
                "synchronous": 2,  # FULL
                "busy_timeout": 10_000,
                "foreign_keys": 1,
            }
            path = make_url(db_url).database
            assert path is not None and Path(path).parent.is_dir()  # created by open()
        else:
            result = await conn.execute(
                text(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns "
                    "WHERE data_type LIKE 'json%' ORDER BY table_name, column_name"
                )
            )
            assert {tuple(row) for row in result} == {
                ("approvals", "approvers", "jsonb"),
                ("approvals", "input", "jsonb"),
                ("approvals", "scopes", "jsonb"),
                ("audit", "data", "jsonb"),
                ("events", "data", "jsonb"),
                ("inbound", "payload", "jsonb"),
                ("outbox", "payload", "jsonb"),
                ("sessions", "overrides", "jsonb"),
            }


async def test_synchronous_from_the_url(backend: str, db_url: str) -> None:
    if backend == "sqlite":
        store = SqlStorage(db_url + "?synchronous=normal")
        assert store.synchronous == "NORMAL"
        await store.open()
        try:
            async with store.read() as conn:
                assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == 1
        finally:
            await store.close()
        with pytest.raises(ConfigError, match="not one of"):
            SqlStorage(db_url + "?synchronous=sometimes")
    else:
        with pytest.raises(ConfigError, match="SQLite only"):
            SqlStorage(db_url + "?synchronous=full")
    with pytest.raises(ConfigError, match="unsupported URL scheme"):
        SqlStorage(db_url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg2"))


async def test_write_lock_is_taken_at_begin(storage: SqlStorage, db_url: str) -> None:
    if storage.is_sqlite:
        path = make_url(db_url).database
        assert path is not None
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            async with storage.write():
                # nothing written yet, but BEGIN IMMEDIATE holds the write lock already
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
                other.execute("BEGIN")  # readers are not blocked (WAL)
                other.execute("SELECT count(*) FROM events").fetchall()
                other.execute("ROLLBACK")
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        finally:
            other.close()
        # a second writer waits within busy_timeout instead of failing at once
        second = SqlStorage(db_url)
        await second.open()
        try:
            async with storage.write():
                task = asyncio.create_task(
                    second.append_batch(
                        [
                            agent_event("text", text="x").stamped(
                                session_id="s", turn_id="t", seq=1, request_id=None
                            )
                        ],
                        (),
                    )
                )
                await asyncio.sleep(0.3)
                assert not task.done()
            await asyncio.wait_for(task, 10)
            assert len(await storage.read_events("s")) == 1
        finally:
            await second.close()
    else:
        # PostgreSQL: migrations wait for the advisory lock another daemon holds
        fresh = await pg_admin()
        name = f"hotplex_test_lock_{os.getpid()}_{random.randrange(1 << 30)}"
        await fresh.execute(f'CREATE DATABASE "{name}"')
        url = db_url.rsplit("/", 1)[0] + "/" + name
        holder = await pg_admin(name)
        try:
            await holder.execute(f"SELECT pg_advisory_lock({PG_LOCK_KEY})")
            store = SqlStorage(url)
            opening = asyncio.create_task(store.open())
            await asyncio.sleep(0.5)
            assert not opening.done()
            await holder.execute(f"SELECT pg_advisory_unlock({PG_LOCK_KEY})")
            await asyncio.wait_for(opening, 20)
            await store.close()
        finally:
            await holder.close()
            await fresh.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await fresh.close()


async def test_sigkill_mid_write_loses_no_acknowledged_commit(db_url: str) -> None:
    rng = random.Random(int(os.environ.get("HOTPLEX_TEST_SEED", "81")))
    acked = 0
    for _ in range(int(os.environ.get("HOTPLEX_TEST_KILL_ROUNDS", "5"))):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            "write",
            db_url,
            "victim",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        try:
            target = rng.randint(5, 60)
            for _ in range(target):
                line = await asyncio.wait_for(proc.stdout.readline(), 20)
                assert line.startswith(b"committed "), (line, await proc.stderr.read())
                acked = max(acked, int(line.split()[1]))
            await asyncio.sleep(rng.random() * 0.02)  # land somewhere inside a transaction
        finally:
            proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 10)
        rest = await asyncio.wait_for(proc.stdout.read(), 10)
        for line in rest.splitlines():  # printed after a commit, before the kill
            acked = max(acked, int(line.split()[1]))
        assert proc.returncode == -signal.SIGKILL

        store = SqlStorage(db_url)
        await store.open()
        try:
            assert await store.integrity_check() == []
            stored = [e.seq for e in await store.read_events("victim", limit=100_000)]
            assert stored == list(range(1, len(stored) + 1))  # whole batches, no holes
            assert len(stored) >= acked  # every acknowledged commit is there
            assert len(stored) - acked in (0, 5)  # at most the batch committed, not yet printed
            audit = await store.read_audit(types=["cron.run"], limit=100_000)
            assert len(audit) == len(stored) // 5  # events and audit committed together
            acked = len(stored)
        finally:
            await store.close()
    assert acked >= 25


async def test_concurrent_writers_in_two_processes(storage: SqlStorage, db_url: str) -> None:
    per_task, tasks, process_count = 200, 8, 400

    async def writer(n: int) -> None:
        for seq in range(1, per_task + 1):
            event = agent_event("status", text=str(seq))
            await storage.append_batch(
                [event.stamped(session_id=f"task{n}", turn_id="t", seq=seq, request_id=None)], ()
            )

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        "append",
        db_url,
        "proc",
        str(process_count),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        ready = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert ready == b"opened\n"  # the other process writes while these tasks do
        await asyncio.wait_for(asyncio.gather(*(writer(n) for n in range(tasks))), 45)
        out, err = await asyncio.wait_for(proc.communicate(), 45)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err
    assert out.decode().strip() == "done"
    for n in range(tasks):
        assert len(await storage.read_events(f"task{n}")) == per_task
    assert len(await storage.read_events("proc")) == process_count
    assert await storage.integrity_check() == []


async def test_full_disk_fails_loudly_and_keeps_the_database_sound(tmp_path: Path) -> None:
    """SQLite only: RLIMIT_FSIZE limits the writing process's own files, and PostgreSQL's
    files belong to the server."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'db' / 'hotplex.db'}"
    store = SqlStorage(url)
    await store.open()
    await store.close()
    size = sum(f.stat().st_size for f in (tmp_path / "db").iterdir())
    started = time.monotonic()
    code, out, err = await run_worker("fill", url, "full", str(size + 1_500_000), timeout=50)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[-1] == "failed StorageError", out[-500:] + err[-2000:]
    acked = [int(line.split()[1]) for line in lines[:-1]]
    assert acked and time.monotonic() - started < 50
    await store.open()
    try:
        assert await store.integrity_check() == []
        stored = [e.seq for e in await store.read_events("full", limit=100_000)]
        assert stored[: len(acked)] == acked
        await store.append_batch(  # usable again once there is room
            [
                agent_event("text", text="after").stamped(
                    session_id="full", turn_id="t", seq=10_000, request_id=None
                )
            ],
            (),
        )
    finally:
        await store.close()


async def test_integrity_check_reports_a_damaged_file(tmp_path: Path) -> None:
    """SQLite only: PostgreSQL's files belong to the server."""
    path = tmp_path / "hotplex.db"
    store = SqlStorage(f"sqlite+aiosqlite:///{path}")
    await store.open()
    batch = [
        agent_event("text", text="z" * 2000).stamped(
            session_id="s", turn_id="t", seq=seq, request_id=None
        )
        for seq in range(1, 201)
    ]
    await store.append_batch(batch, ())
    assert await store.integrity_check() == []
    await store.close()  # the last connection checkpoints the WAL into the file
    data = bytearray(path.read_bytes())
    page = 4096
    middle = (len(data) // page // 2) * page
    data[middle + 100 : middle + 3000] = b"\xff" * 2900
    path.write_bytes(bytes(data))
    await store.open()
    try:
        problems = await store.integrity_check()
        assert problems, "a damaged page went unnoticed"
    finally:
        await store.close()
