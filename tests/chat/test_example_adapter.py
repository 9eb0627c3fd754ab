"""The example chat adapter of docs/plugins.md installs and passes its own tests (the
conformance suite and a mention through a running HotPlex)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from hotplex.testing.distributions import write_distribution

DOC = Path(__file__).parents[2] / "docs" / "plugins.md"


def adapter_files() -> dict[str, str]:
    pattern = re.compile(r"<!-- adapter-file: (\S+) -->\n```[a-z]*\n(.*?)\n```", re.DOTALL)
    return {path: body + "\n" for path, body in pattern.findall(DOC.read_text())}


def test_the_example_adapter_passes_its_tests(tmp_path: Path) -> None:
    files = adapter_files()
    for required in ("pyproject.toml", "memo_chat/plugin.py", "tests/test_memo.py"):
        assert required in files, f"docs/plugins.md lacks the adapter file {required}"
    pyproject = tomllib.loads(files["pyproject.toml"])
    project = pyproject["project"]
    site = tmp_path / "site"
    write_distribution(
        site,
        project["name"],
        version=project["version"],
        entry_points={"hotplex": project["entry-points"]["hotplex"]},
        files={p: t for p, t in files.items()},
    )
    env = {**os.environ, "PYTHONPATH": str(site), "HOTPLEX_DISABLE_PLUGINS": "", "HOME": str(site)}
    env.pop("HOTPLEX_CONFIG", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=site,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # the stream and file checks are skipped: the example declares neither
    assert re.search(r"\b7 passed, 2 skipped\b", result.stdout), result.stdout
