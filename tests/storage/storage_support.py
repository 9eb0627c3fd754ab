"""Helpers shared by the storage tests (a plainly named module: tests/ has no packages)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from hotplex.testing.databases import PG_ADMIN_DSN, pg_admin, pg_unavailable, pg_url

__all__ = ["PG_ADMIN_DSN", "WORKER", "pg_admin", "pg_unavailable", "pg_url", "run_worker"]

WORKER = Path(__file__).with_name("_worker.py")


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
