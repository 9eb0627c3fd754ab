"""Storage fixtures: every test taking ``db_url`` or ``storage`` runs on SQLite and on
PostgreSQL (a scratch database ``hotplex_test_<random>`` per test, dropped afterwards).

PostgreSQL is the server on 127.0.0.1:5432 (user postgres, trust auth), or the DSN in
``HOTPLEX_TEST_PG_ADMIN``. When it cannot be reached the PostgreSQL variants skip, except
with ``CI=true``, where they fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hotplex.storage.sql import SqlStorage
from hotplex.testing.databases import scratch_database

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def db_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a fresh, empty database (SQLite: a file in a folder not created yet)."""
    async with scratch_database(backend, tmp_path) as url:
        yield url


@pytest.fixture
async def storage(db_url: str) -> AsyncIterator[SqlStorage]:
    """An opened SqlStorage on a fresh database."""
    store = SqlStorage(db_url)
    await asyncio.wait_for(store.open(), timeout=30)
    try:
        yield store
    finally:
        await store.close()
