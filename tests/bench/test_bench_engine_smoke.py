"""Smoke test of the engine benchmark (bench/engine.py): it runs end to end with the real
CLI and reports every figure.

The performance targets are deliberately not asserted: the machine is shared and noisy, and
the verdicts live in the benchmark's own output.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hotplex.binaries import project_root
from hotplex.testing.real_cli import require_cli

ROOT = project_root()
TIMINGS = (
    "cold_ms",
    "hot_ms",
    "engine_ms",
    "raw_ms",
    "engine_cpu_ms",
    "raw_cpu_ms",
    "engine_path_ms",
    "raw_path_ms",
    "prewarm_ms",
    "raw_first_ms",
)
RATIOS = ("cold_hot", "prewarm_hot", "prewarm_cold", "prewarm_raw_first")


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def assert_positive_stats(name: str, stats: dict[str, Any]) -> None:
    assert stats["n"] > 0, name
    for field in ("median", "p10", "p90"):
        assert is_number(stats[field]) and stats[field] > 0, (name, field, stats)


def assert_memory(memory: dict[str, Any], *, agents: bool) -> None:
    assert memory["sessions"] > 0
    assert memory["rss0_kib"] > 0 and memory["rssn_kib"] > 0
    assert is_number(memory["per_session_kib"])  # a difference: may be ~0 at quick sizes
    if agents:
        assert_positive_stats("agent_rss_kib", memory["agent_rss_kib"])
    else:
        assert memory["agent_rss_kib"] is None


@pytest.mark.real_cli
@pytest.mark.timeout(300)
def test_quick_benchmark_reports_every_figure(tmp_path: Path) -> None:
    require_cli("claude")
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "engine.py"), "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads(out.read_text())

    for name in TIMINGS:
        assert_positive_stats(name, data[name])
    overhead = data["overhead_ms"]  # paired differences engine - raw: any sign
    assert overhead["n"] == data["meta"]["plan"]["pairs"] == data["engine_ms"]["n"]
    assert all(is_number(overhead[field]) for field in ("median", "p10", "p90"))
    low, high = data["overhead_ci95_ms"]
    assert is_number(low) and is_number(high) and low <= high
    for name in RATIOS:
        assert is_number(data["ratios"][name]) and data["ratios"][name] > 0, name
    assert_memory(data["memory"]["real"], agents=True)
    assert_memory(data["memory"]["fake"], agents=False)

    verdicts = data["verdicts"]
    assert len(verdicts) == 3
    assert all(isinstance(v["passed"], bool) and v["detail"] for v in verdicts)
    printed = [line for line in proc.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert len(printed) == 3, proc.stdout
