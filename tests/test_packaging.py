"""The wheel carries the templates, configs, the web chat's static files and the plugin
packages, and an installed copy finds them."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (found,) = out.glob("hotplex-*.whl")
    return found


def test_wheel_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "hotplex/templates/text/help.md.j2",
        "hotplex/configs/hotplex.example.yaml",
        "hotplex/py.typed",
        "hotplex/web/static/index.html",
        "hotplex/web/static/app.js",
        "hotplex/web/static/style.css",
        "hotplex_slack/plugin.py",
        "hotplex_feishu/plugin.py",
        "hotplex_relay/plugin.py",
        "hotplex_cron/plugin.py",
        "hotplex_webhook/plugin.py",
    ):
        assert required in names, f"{required} missing from {wheel.name}"
    assert not any(n.startswith(("tests/", "chatapps/", "plugins/", "templates/")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "slack = hotplex_slack.plugin" in text


def test_installed_wheel_finds_its_files(wheel: Path, tmp_path: Path) -> None:
    """Install the wheel (no deps) into a fresh venv that sees this venv's packages, and
    read the shipped files from outside the source tree."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env_dir)
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    code = (
        "import hotplex, sys\n"
        "from hotplex.resources import config_file, template_root\n"
        "assert hotplex.__file__.startswith(sys.argv[1]), hotplex.__file__\n"
        "print(config_file('hotplex.example.yaml').read_text()[:40])\n"
        "print(sorted(p.name for p in template_root().iterdir()))\n"
        "from hotplex.web import STATIC_DIR, STATIC_FILES\n"
        "assert STATIC_DIR.is_relative_to(sys.argv[1]), STATIC_DIR\n"
        "print(sorted(n for n in STATIC_FILES if (STATIC_DIR / n).stat().st_size > 0))\n"
    )
    deps = next(p for p in sys.path if p.endswith("site-packages"))
    result = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", code, str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PYTHONPATH": f"{target}:{deps}", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "HotPlex configuration" in result.stdout and "'text'" in result.stdout
    assert "['app.js', 'index.html', 'style.css']" in result.stdout
