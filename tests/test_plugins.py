from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotplex import hookimpl, plugins
from hotplex.errors import DuplicateNameError, PluginError
from hotplex.plugins import make_plugin_manager
from hotplex.records import ProviderSpec
from hotplex.testing.distributions import write_distribution
from hotplex.testing.fakes import FakeProvider


def provider_plugin(name: str) -> object:
    class Plugin:
        @hookimpl
        def hotplex_register_providers(self) -> list[ProviderSpec]:
            return [ProviderSpec(name=name, factory=lambda ctx: FakeProvider())]

    return Plugin()


def test_duplicate_names_are_an_error_naming_both() -> None:
    pm = make_plugin_manager(entry_points=False, environ={})
    pm.register(provider_plugin("agent"), "alpha")
    pm.register(provider_plugin("agent"), "beta")
    with pytest.raises(DuplicateNameError) as info:
        pm.check()
    assert "'alpha'" in str(info.value) and "'beta'" in str(info.value)
    assert "provider 'agent'" in str(info.value)


def test_entry_point_plugins_load_and_can_be_disabled() -> None:
    names = make_plugin_manager(environ={}).loaded_names()
    assert names == ["core", "cron", "feishu", "relay", "slack", "webhook"]
    pm = make_plugin_manager(environ={"HOTPLEX_DISABLE_PLUGINS": "slack, cron"})
    assert pm.loaded_names() == ["core", "feishu", "relay", "webhook"]
    info = pm.info("slack")
    assert info is not None and not info.loaded
    assert info.reason == "disabled by HOTPLEX_DISABLE_PLUGINS"


def test_core_cannot_be_disabled() -> None:
    pm = make_plugin_manager(entry_points=False, environ={"HOTPLEX_DISABLE_PLUGINS": "core"})
    assert pm.loaded_names() == ["core"]


def test_plugins_enabled_allow_list() -> None:
    pm = make_plugin_manager(environ={}, plugins_enabled=["relay"])
    assert pm.loaded_names() == ["core", "relay"]
    info = pm.info("slack")
    assert info is not None and info.reason == "not in plugins_enabled"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in [m for m in sys.modules if m.startswith("tp_")]:
        del sys.modules[name]


def test_broken_third_party_plugin_is_logged_and_skipped(
    site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_distribution(
        site,
        "tp-broken",
        entry_points={"hotplex": {"broken": "tp_broken"}},
        files={"tp_broken.py": "raise RuntimeError('kaput')\n"},
    )
    with caplog.at_level(logging.WARNING):
        pm = make_plugin_manager(environ={})
    assert "broken" not in pm.loaded_names()
    info = pm.info("broken")
    assert info is not None and not info.available and "kaput" in (info.reason or "")
    assert "plugin 'broken'" in caplog.text and "kaput" in caplog.text


def test_plugin_with_missing_sdk_is_unavailable_with_hint(site: Path) -> None:
    module = (
        "from hotplex.records import PluginManifest, Requirement\n"
        "manifest = PluginManifest('needy', requires=(Requirement('no_such_sdk_xyz', "
        "'pip install no-such-sdk'),))\n"
    )
    write_distribution(
        site,
        "tp-needy",
        entry_points={"hotplex": {"needy": "tp_needy"}},
        files={"tp_needy.py": module},
    )
    info = make_plugin_manager(environ={}).info("needy")
    assert info is not None and info.loaded and not info.available
    assert info.reason == "needs no_such_sdk_xyz: pip install no-such-sdk"


def test_broken_builtin_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "BUILTIN_PLUGINS", (("core", "hotplex.no_such_module"),))
    with pytest.raises(PluginError, match=r"built-in plugin 'core'.*reinstall hotplex"):
        make_plugin_manager(environ={})


def test_hook_returning_wrong_type_names_the_plugin() -> None:
    class Bad:
        @hookimpl
        def hotplex_register_providers(self) -> list[str]:
            return ["not a spec"]

    pm = make_plugin_manager(entry_points=False, environ={})
    pm.register(Bad(), "bad")
    with pytest.raises(PluginError, match=r"plugin 'bad'.*returned str, expected ProviderSpec"):
        pm.providers()


def test_plugin_modules_import_no_sdk() -> None:
    import subprocess

    code = (
        "import sys\n"
        "from hotplex.plugins import make_plugin_manager\n"
        "pm = make_plugin_manager()\n"
        "pm.check()\n"
        "heavy = [m for m in ('slack_bolt', 'slack_sdk', 'lark_oapi', 'apscheduler',"
        " 'sqlalchemy', 'aiohttp') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == ""
