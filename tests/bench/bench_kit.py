"""Kit of the benchmark smoke tests: run a benchmark's quick mode, check its figures."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

from hotplex.binaries import project_root

ROOT = project_root()


def run_quick(script: str, tmp_path: Path) -> tuple[dict[str, Any], str]:
    """``bench/<script> --quick``: its JSON report and what it printed (the run must
    succeed in 240 s)."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report: dict[str, Any] = json.loads(out.read_text())
    return report, proc.stdout


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def assert_positive_stats(name: str, stats: dict[str, Any]) -> None:
    assert stats["n"] > 0, name
    for field in ("median", "p10", "p90"):
        assert is_number(stats[field]) and stats[field] > 0, (name, field, stats)
