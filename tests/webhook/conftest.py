from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hotplex.testing.databases import scratch_database

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database on SQLite and on PostgreSQL (skips without a server, fails in CI)."""
    async with scratch_database(str(request.param), tmp_path) as url:
        yield url
