"""``make run`` sets up what running needs (the venv, the agent CLIs) and no system package;
Chromium and PostgreSQL are ``make test``'s. Nothing here runs apt, pip or npm: the Makefile
is read with ``make -n`` and ``scripts/setup.sh`` runs from a copy with every outside
command replaced by a shim that records its call."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SYSTEM_WORDS = re.compile(r"chromium|postgres|pg_ctl|apt-get|\bapt\b|sudo|setup\.sh test")

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def make_dry(target: str) -> list[str]:
    result = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "--no-print-directory", target],
        capture_output=True, text=True, timeout=30, check=True,
    )
    return result.stdout.splitlines()


def setup_mode(lines: list[str]) -> str:
    (call,) = [line for line in lines if "scripts/setup.sh" in line]
    return call.split("scripts/setup.sh", 1)[1].split()[0]


def test_make_run_has_no_system_package_step() -> None:
    lines = make_dry("run")
    assert setup_mode(lines) == "run"
    assert not [line for line in lines if SYSTEM_WORDS.search(line)], lines
    assert lines[-1].endswith("hotplex serve")


def test_make_test_sets_up_the_test_machine() -> None:
    assert setup_mode(make_dry("test")) == "test"


def test_ci_runs_make_test() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)


SHIM = """#!/bin/sh
echo "{name} $*" >>"$SHIM_LOG"
{extra}
exit 0
"""
# python3 -m venv DIR makes DIR/bin/python, itself a shim; npm makes node_modules
EXTRA = {
    "python3": (
        'if [ "$1" = -m ] && [ "$2" = venv ]; then mkdir -p "$3/bin"; '
        'printf \'#!/bin/sh\\necho "venv-python $*" >>"$SHIM_LOG"\\n\' >"$3/bin/python"; '
        'chmod +x "$3/bin/python"; fi'
    ),
    "npm": "mkdir -p node_modules",
}
SHIMMED = ("python3", "node", "npm", "apt-get", "sudo", "pg_ctlcluster", "pip", "pip3")


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the script and package.json, and a PATH whose outside commands are shims."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    shutil.copy(ROOT / "package.json", tmp_path / "package.json")
    shims = tmp_path / "shims"
    shims.mkdir()
    for name in SHIMMED:
        path = shims / name
        path.write_text(SHIM.format(name=name, extra=EXTRA.get(name, "")))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    env = {
        "PATH": f"{shims}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SHIM_LOG": str(tmp_path / "calls.log"),
        "SETUP_SKIP_APT": "1",
    }
    return tmp_path, env


def setup(root: Path, env: dict[str, str], *args: str) -> tuple[list[str], list[str]]:
    result = subprocess.run(
        ["bash", str(root / "scripts" / "setup.sh"), *args],
        capture_output=True, text=True, timeout=60, env=env, check=True,
    )
    log = Path(env["SHIM_LOG"])
    calls = log.read_text().splitlines() if log.exists() else []
    return result.stdout.splitlines(), calls


def test_setup_run_installs_the_venv_and_agent_clis_only(
    sandbox: tuple[Path, dict[str, str]],
) -> None:
    root, env = sandbox
    out, calls = setup(root, env, "run")
    assert [line.split(" ... ")[0] for line in out] == ["setup: python venv", "setup: npm packages"]
    assert "python3 -m venv .venv" in calls
    (pip,) = [c for c in calls if c.startswith("venv-python -m pip install")]
    target = pip.split(" -e ", 1)[1]
    assert "dev" not in target, "make run must not install the test tools"
    assert any(c.startswith("npm ") for c in calls)
    assert not [c for c in calls if SYSTEM_WORDS.search(c)], calls
    # run again: both steps see their stamps and do nothing
    (root / "calls.log").unlink()
    (root / ".venv" / "bin" / "hotplex").write_text("")
    os.chmod(root / ".venv" / "bin" / "hotplex", 0o755)
    (root / "node_modules" / ".bin").mkdir(parents=True)
    (root / "node_modules" / ".bin" / "claude").write_text("")
    os.chmod(root / "node_modules" / ".bin" / "claude", 0o755)
    out, calls = setup(root, env, "run")
    assert out == ["setup: python venv ... skipped", "setup: npm packages ... skipped"]
    assert calls == []


def test_setup_modes_in_a_dry_run(sandbox: tuple[Path, dict[str, str]]) -> None:
    root, env = sandbox
    env = {**env, "SETUP_DRY_RUN": "1"}
    out, calls = setup(root, env, "run")
    assert out == ["setup: python_run ... dry run", "setup: npm_packages ... dry run"]
    out, calls = setup(root, env, "test")
    steps = [line.split()[1] for line in out]
    assert steps == ["python_test", "npm_packages", "chromium", "postgres"]
    assert calls == [] and not (root / ".venv").exists()
    refused = subprocess.run(
        ["bash", str(root / "scripts" / "setup.sh"), "serve"],
        capture_output=True, text=True, timeout=30, env=env, check=False,
    )
    assert refused.returncode == 1 and "usage: scripts/setup.sh [run|test]" in refused.stderr
