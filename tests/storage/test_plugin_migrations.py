"""A plugin's migrations, registered with ``hotplex_register_migrations``, are applied by
storage itself when it opens, on SQLite and PostgreSQL: after core's, in version order per
plugin, once (also when several storages open the database at the same moment); a plugin
that is switched off gets nothing applied."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import Field
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, select, text

from hotplex import hookimpl
from hotplex.config import PluginSettings, load_settings
from hotplex.errors import PluginError
from hotplex.plugins import make_plugin_manager
from hotplex.records import ConfigSection, Migration
from hotplex.runtime import Runtime, make_storage
from hotplex.storage.migrator import MIGRATIONS_TABLE
from hotplex.storage.sql import SqlStorage


class CronSettings(PluginSettings):
    enabled: bool = Field(True, description="Run the plugin.")


def cron_plugin(calls: list[str], component: str = "cron") -> object:
    def v1(conn: Connection) -> None:
        calls.append("v1")
        Table("cron_jobs", MetaData(), Column("id", String, primary_key=True)).create(conn)

    def v2(conn: Connection) -> None:  # needs v1's table
        calls.append("v2")
        conn.execute(text("ALTER TABLE cron_jobs ADD COLUMN paused INTEGER NOT NULL DEFAULT 0"))

    def v3(conn: Connection) -> None:
        calls.append("v3")
        table = Table("cron_runs", MetaData(), Column("n", Integer, primary_key=True))
        table.create(conn)

    class Plugin:
        @hookimpl
        def hotplex_add_config(self) -> ConfigSection:
            return ConfigSection("cron", CronSettings)

        @hookimpl
        def hotplex_register_migrations(self) -> list[Migration]:
            # out of order on purpose: storage sorts them by version
            return [
                Migration(component, 3, "cron_runs", v3),
                Migration(component, 1, "cron_jobs", v1),
                Migration(component, 2, "cron_jobs.paused", v2),
            ]

    return Plugin()


def runtime_for(
    db_url: str, tmp_path: Path, calls: list[str], *, enabled: bool = True, component: str = "cron"
) -> Runtime:
    pm = make_plugin_manager(entry_points=False, environ={})
    pm.register(cron_plugin(calls, component), "cron")
    raw: dict[str, Any] = {
        "engine": {"data_dir": str(tmp_path / "data")},
        "storage": {"url": db_url},
        "plugins": {"cron": {"enabled": enabled}},
    }
    settings = load_settings(
        None, text=yaml.safe_dump(raw), sections=pm.config_sections().values(), environ={}
    ).settings
    return Runtime(settings, pm)


async def applied(store: SqlStorage) -> list[tuple[str, int]]:
    async with store.read() as conn:
        rows = await conn.execute(
            select(MIGRATIONS_TABLE.c.component, MIGRATIONS_TABLE.c.version).order_by(
                MIGRATIONS_TABLE.c.applied_at, MIGRATIONS_TABLE.c.component
            )
        )
        return [(str(c), int(v)) for c, v in rows]


async def test_storage_applies_a_plugins_migrations_at_open_in_order_once(
    db_url: str, tmp_path: Path
) -> None:
    calls: list[str] = []
    runtime = runtime_for(db_url, tmp_path, calls)
    store = make_storage(runtime.ctx)
    assert isinstance(store, SqlStorage)
    await asyncio.wait_for(store.open(), 30)
    try:
        assert calls == ["v1", "v2", "v3"]
        done = await applied(store)
        assert [m for m in done if m[0] == "cron"] == [("cron", 1), ("cron", 2), ("cron", 3)]
        assert done.index(("cron", 1)) > done.index(("core", 3))  # after core's
        async with store.write() as conn:
            await conn.execute(text("INSERT INTO cron_jobs (id, paused) VALUES ('j', 1)"))
            await conn.execute(text("INSERT INTO cron_runs (n) VALUES (1)"))
    finally:
        await store.close()
    again = make_storage(runtime_for(db_url, tmp_path, calls).ctx)
    await asyncio.wait_for(again.open(), 30)  # a restart: nothing to do
    await again.close()
    assert calls == ["v1", "v2", "v3"]


async def test_storages_opening_together_apply_each_migration_once(
    db_url: str, tmp_path: Path
) -> None:
    calls: list[str] = []
    stores = [make_storage(runtime_for(db_url, tmp_path, calls).ctx) for _ in range(3)]
    try:
        await asyncio.wait_for(asyncio.gather(*(s.open() for s in stores)), 60)
        assert sorted(calls) == ["v1", "v2", "v3"]  # a second apply would also fail: table
    finally:
        for store in stores:
            await store.close()


async def test_a_switched_off_plugin_gets_no_migrations(db_url: str, tmp_path: Path) -> None:
    calls: list[str] = []
    store = make_storage(runtime_for(db_url, tmp_path, calls, enabled=False).ctx)
    assert isinstance(store, SqlStorage)
    await asyncio.wait_for(store.open(), 30)
    try:
        assert calls == []
        assert all(component == "core" for component, _ in await applied(store))
    finally:
        await store.close()


def test_a_plugin_migrates_only_its_own_component(tmp_path: Path) -> None:
    runtime = runtime_for("sqlite+aiosqlite:///unused.db", tmp_path, [], component="core")
    with pytest.raises(PluginError, match="own component"):
        runtime.ctx.plugins.migrations()
