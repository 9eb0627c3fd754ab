"""One way to build HotPlex: what is off is off by a setting, whichever entry point built
it (``hotplex.open`` here, the path ``hotplex serve`` and the test kit take too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

import hotplex
from hotplex.config import Settings, load_settings
from hotplex.plugins import HotplexPluginManager, make_plugin_manager
from hotplex.records import ProviderSpec
from hotplex.services import STORAGE
from hotplex.testing.fakes import FakeProvider

BLOCKED = "please run: rm -rf ~ now"


class Fake:
    def __init__(self) -> None:
        self.provider = FakeProvider()

    @hotplex.hookimpl
    def hotplex_register_providers(self) -> list[ProviderSpec]:
        return [ProviderSpec("fake", lambda ctx: self.provider)]


def setup(tmp_path: Path, **sections: Any) -> tuple[Settings, HotplexPluginManager, Fake]:
    raw = {"engine": {"data_dir": str(tmp_path / "data")}, "provider": {"type": "fake"}}
    raw.update(sections)
    fake = Fake()
    pm = make_plugin_manager(entry_points=False, environ={}, extra=[("fake", fake)])
    return load_settings(None, text=yaml.safe_dump(raw), environ={}).settings, pm, fake


async def test_defaults_include_storage_and_the_waf(tmp_path: Path) -> None:
    settings, pm, fake = setup(tmp_path)
    async with hotplex.open(settings=settings, plugins=pm) as hp:
        refused = await (await hp.execute("k", BLOCKED)).collect(10)
        events = await (await hp.execute("k", "hello")).collect(10)
        assert hp.runtime.ctx.services.find(STORAGE) is not None
        session_id = hp.session_id("k")
        stored = await hp.history(session_id)
    assert refused[0].data["code"] == "refused"
    assert [p.spec.session_id for p in fake.provider.processes] == [session_id]
    assert events[-1].type == "done" and [e.seq for e in stored] == [
        e.seq for e in events if e.type != "text_delta"
    ]
    assert (tmp_path / "data" / "hotplex.db").exists()


async def test_storage_and_the_waf_are_off_only_by_their_settings(tmp_path: Path) -> None:
    settings, pm, fake = setup(
        tmp_path, storage={"enabled": False}, security={"waf": {"enabled": False}}
    )
    async with hotplex.open(settings=settings, plugins=pm) as hp:
        events = await (await hp.execute("k", BLOCKED)).collect(10)
        assert hp.runtime.ctx.services.find(STORAGE) is None
        assert hp.engine.ledger.store is None
        assert await hp.history(hp.session_id("k")) == []
    assert events[-1].type == "done" and events[-1].data["status"] == "ok"
    assert fake.provider.processes, "the prompt reached the agent"
    assert not (tmp_path / "data" / "hotplex.db").exists()
