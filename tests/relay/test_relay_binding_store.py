"""The bindings' table: the plugin's migration applies on SQLite and PostgreSQL through
storage's own migration runner, and bindings survive a reopen."""

from __future__ import annotations

from pathlib import Path

import hotplex_relay.plugin as relay_plugin
import pytest
from hotplex_relay.bindings import BindingStore

from hotplex import UserFacingError
from hotplex.storage.sql import SqlStorage
from hotplex.testing.databases import scratch_database


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_bindings_are_stored_in_the_plugins_table(backend: str, tmp_path: Path) -> None:
    migrations = relay_plugin.hotplex_register_migrations()
    assert [(m.component, m.version) for m in migrations] == [("relay", 1)]
    async with scratch_database(backend, tmp_path) as url:
        storage = SqlStorage(url, migrations=migrations)
        await storage.open()
        try:
            store = BindingStore(storage)
            await store.bind("web:alice/s1", "slack:T01/C02", by="admin")
            await store.bind("slack:T01/C02", "web:alice/s1")  # the same pair: no change
            await store.bind("feishu:tk/oc_1", "slack:T01/C02")
            with pytest.raises(UserFacingError, match="itself"):
                await store.bind("web:alice/s1", "web:alice/s1")
            with pytest.raises(UserFacingError, match="not a conversation address"):
                await store.bind("nonsense", "web:alice/s1")
        finally:
            await storage.close()

        reopened = SqlStorage(url, migrations=migrations)
        await reopened.open()  # applied once: the second open finds it done
        try:
            store = BindingStore(reopened)
            await store.load()
            assert [(b.left, b.right, b.created_by) for b in store.all()] == [
                ("feishu:tk/oc_1", "slack:T01/C02", None),
                ("slack:T01/C02", "web:alice/s1", "admin"),
            ]
            assert sorted(store.partners("slack:T01/C02")) == ["feishu:tk/oc_1", "web:alice/s1"]
            assert await store.unbind("slack:T01/C02", "feishu:tk/oc_1") is True
            assert await store.unbind("slack:T01/C02", "feishu:tk/oc_1") is False
            again = BindingStore(reopened)
            await again.load()
            assert [b.left for b in again.all()] == ["slack:T01/C02"]
        finally:
            await reopened.close()
