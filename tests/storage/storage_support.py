"""Helpers shared by the storage tests (a plainly named module: tests/ has no packages)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg
import pytest

PG_ADMIN_DSN = os.environ.get(
    "HOTPLEX_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
WORKER = Path(__file__).with_name("_worker.py")

_pg_error: list[str] = []  # why PostgreSQL was unreachable, once known


def pg_unavailable(reason: str) -> None:
    """Skip, or with CI=true fail: a skipped PostgreSQL test in CI is a failure."""
    message = f"PostgreSQL at {PG_ADMIN_DSN.split('@')[-1]} is unavailable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: PostgreSQL tests must run)", pytrace=False)
    pytest.skip(message)


async def pg_admin(database: str | None = None) -> asyncpg.Connection:
    """A connection to the maintenance database, or to ``database`` (skips or fails when
    the server is unreachable)."""
    if _pg_error:
        pg_unavailable(_pg_error[0])
    dsn = PG_ADMIN_DSN if database is None else PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + database
    try:
        return await asyncio.wait_for(asyncpg.connect(dsn), timeout=5.0)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        _pg_error.append(f"{type(exc).__name__}: {exc}")
        pg_unavailable(_pg_error[0])
        raise  # not reached: pg_unavailable raises


def pg_url(database: str) -> str:
    """The SQLAlchemy URL of ``database`` on the test server."""
    rest = PG_ADMIN_DSN.split("://", 1)[1].rsplit("/", 1)[0]
    return f"postgresql+asyncpg://{rest}/{database}"


async def run_worker(*args: str, timeout: float = 40.0) -> tuple[int, str, str]:
    """Run tests/storage/_worker.py with ``args``; (returncode, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
