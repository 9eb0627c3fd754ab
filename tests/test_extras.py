"""Each plugin's SDK is an extra of the ``hotplex`` distribution, and a plugin (or the
PostgreSQL storage) whose extra is missing says which ``pip install 'hotplex[...]'`` fixes
it. A missing SDK is simulated in a subprocess by a meta-path finder that refuses the
import, not by uninstalling anything."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from hotplex.plugins import make_plugin_manager
from hotplex.records import PluginManifest

ROOT = Path(__file__).parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS: dict[str, list[str]] = PYPROJECT["optional-dependencies"]
PLUGIN_SDKS = {"slack": "slack_bolt", "feishu": "lark_oapi", "cron": "apscheduler"}

#: Prepended to a ``python -c`` program: importing any module named in REFUSE fails.
REFUSING = """
import os, sys
REFUSE = set(os.environ["REFUSE"].split(","))
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in REFUSE:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Refuse())
"""


def hotplex(
    refuse: str, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``hotplex ARGS`` in a subprocess that cannot import the modules in ``refuse``."""
    program = REFUSING + "from hotplex.cli import main\nmain(sys.argv[1:])\n"
    env = {**os.environ, "REFUSE": refuse, "HOTPLEX_DISABLE_PLUGINS": ""}
    env.pop("HOTPLEX_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-c", program, *args],
        capture_output=True, text=True, timeout=120, env=env, cwd=cwd, check=False,
    )


def name_of(requirement: str) -> str:
    """The normalized distribution name of a requirement (PEP 503)."""
    name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def test_core_dependencies_hold_no_plugin_sdk() -> None:
    core = {name_of(r) for r in PYPROJECT["dependencies"]}
    for extra in ("slack", "feishu", "cron", "postgres"):
        for requirement in EXTRAS[extra]:
            assert name_of(requirement) not in core, f"{requirement} is in the core deps"
    assert {name_of(r) for r in EXTRAS["testing"]} >= {"pytest", "pytest-asyncio"}


def test_dev_pulls_in_every_extra() -> None:
    (all_ref,) = [r for r in EXTRAS["all"] if r.startswith("hotplex[")]
    assert set(all_ref[len("hotplex[") : -1].split(",")) == {"slack", "feishu", "cron", "postgres"}
    (dev_ref,) = [r for r in EXTRAS["dev"] if r.startswith("hotplex[")]
    assert set(dev_ref[len("hotplex[") : -1].split(",")) == {"all", "testing"}


def test_every_requirement_hint_names_the_extra_that_provides_it() -> None:
    providers = metadata.packages_distributions()
    pm = make_plugin_manager(environ={})
    checked = 0
    for info in pm.plugins():
        manifest = getattr(importlib.import_module(info.module), "manifest", None)
        if not isinstance(manifest, PluginManifest):
            continue
        for requirement in manifest.requires:
            match = re.fullmatch(r"pip install 'hotplex\[(\w+)\]'", requirement.install_hint)
            assert match, f"{info.name}: {requirement.install_hint!r} names no hotplex extra"
            extra = match.group(1)
            dists = {name_of(d) for d in providers.get(requirement.module, [])}
            assert dists & {name_of(r) for r in EXTRAS[extra]}, (
                f"{info.name}: hotplex[{extra}] does not install {requirement.module}"
            )
            checked += 1
    assert checked >= 4  # slack (2), feishu, cron


@pytest.mark.parametrize(("plugin", "sdk"), sorted(PLUGIN_SDKS.items()))
def test_a_plugin_without_its_sdk_names_its_extra(plugin: str, sdk: str) -> None:
    result = hotplex(sdk, "plugins")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith(f"{plugin} "))
    assert " unavailable " in lines[row]
    assert lines[row + 1].strip() == f"↳ needs {sdk}: pip install 'hotplex[{plugin}]'"
    as_json = json.loads(hotplex(sdk, "plugins", "--json").stdout)
    (info,) = [p for p in as_json if p["name"] == plugin]
    assert info["available"] is False and info["fix"] == f"pip install 'hotplex[{plugin}]'"
    # the others are fine
    others = [p for p in as_json if p["name"] != plugin]
    assert all(p["available"] for p in others)


def test_doctor_names_the_extra_of_an_enabled_plugin(tmp_path: Path) -> None:
    config = tmp_path / "hotplex.yaml"
    config.write_text(
        f"engine: {{data_dir: {tmp_path / 'data'}}}\n"
        "plugins:\n  slack: {enabled: true, bot_token: xoxb-1, app_token: xapp-1}\n"
    )
    result = hotplex("slack_bolt,slack_sdk", "--config", str(config), "doctor", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    row = next(i for i, line in enumerate(lines) if "plugin slack" in line)
    assert lines[row].startswith("FAIL") and "pip install 'hotplex[slack]'" in lines[row]
    assert lines[row + 1].split() == ["fix:", "pip", "install", "'hotplex[slack]'"]


def test_postgres_storage_without_asyncpg_names_the_extra(tmp_path: Path) -> None:
    config = tmp_path / "hotplex.yaml"
    config.write_text(
        f"engine: {{data_dir: {tmp_path / 'data'}}}\n"
        "storage: {url: 'postgresql+asyncpg://hotplex@127.0.0.1:5432/hotplex'}\n"
        "server: {port: 0}\n"
    )
    hint = "pip install 'hotplex[postgres]'"
    doctor = hotplex("asyncpg", "--config", str(config), "doctor", cwd=tmp_path)
    storage = next(line for line in doctor.stdout.splitlines() if " storage " in line)
    assert storage.startswith("FAIL") and hint in storage, doctor.stdout
    serve = hotplex("asyncpg", "serve", "--config", str(config), cwd=tmp_path)
    assert serve.returncode == 1 and hint in serve.stderr, serve.stderr
    assert "storage.url" in serve.stderr


def test_the_test_kit_needs_only_the_testing_extra() -> None:
    """hotplex.testing imports with pytest and pytest-asyncio but without the dev tools or
    any plugin SDK."""
    refuse = "hypothesis,pytest_timeout,slack_bolt,slack_sdk,lark_oapi,apscheduler,asyncpg"
    program = REFUSING + (
        "import pkgutil, importlib, hotplex.testing\n"
        "for m in pkgutil.iter_modules(hotplex.testing.__path__):\n"
        "    importlib.import_module('hotplex.testing.' + m.name)\n"
        "import pytest_asyncio\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True, text=True, timeout=120, env={**os.environ, "REFUSE": refuse},
        check=False,
    )
    assert result.stdout.strip() == "ok", result.stderr
