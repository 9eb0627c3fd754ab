"""Meta-tests: the entry-point table and clean imports of every module."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).parents[1]

EXPECTED_ENTRY_POINTS = {
    ("hotplex", "slack", "hotplex_slack.plugin"),
    ("hotplex", "feishu", "hotplex_feishu.plugin"),
    ("hotplex", "relay", "hotplex_relay.plugin"),
    ("hotplex", "cron", "hotplex_cron.plugin"),
    ("hotplex", "webhook", "hotplex_webhook.plugin"),
    ("pytest11", "hotplex", "hotplex.testing.pytest_plugin"),
    ("console_scripts", "hotplex", "hotplex.cli:main"),
}


def test_installed_entry_points_equal_the_expected_set() -> None:
    dist = metadata.distribution("hotplex")
    installed = {(ep.group, ep.name, ep.value) for ep in dist.entry_points}
    assert installed == EXPECTED_ENTRY_POINTS


def all_modules() -> list[str]:
    roots = {"hotplex": ROOT / "hotplex"}
    for folder in ("chatapps", "plugins"):
        for pkg in sorted((ROOT / folder).glob("hotplex_*")):
            roots[pkg.name] = pkg
    modules = []
    for name, path in roots.items():
        for file in sorted(path.rglob("*.py")):
            rel = file.relative_to(path).with_suffix("")
            parts = [name, *rel.parts]
            if parts[-1] == "__init__":
                parts.pop()
            if parts[-1] == "__main__":
                continue
            modules.append(".".join(parts))
    return modules


def test_every_module_imports_with_warnings_as_errors() -> None:
    modules = all_modules()
    assert len(modules) > 30
    code = (
        "import importlib, sys, traceback\n"
        "failed = []\n"
        f"for name in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except BaseException:\n"
        "        failed.append(name + ': ' + traceback.format_exc(limit=3))\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_test_module_names_are_unique() -> None:
    # tests are imported by basename (no packages): two test_x.py files collide at collection
    names = [p.name for p in Path(__file__).parent.rglob("test_*.py")]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
