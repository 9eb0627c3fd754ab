"""Smoke test of the engine benchmark (bench/engine.py): it runs end to end with the real
CLI and reports every figure.

The performance targets are deliberately not asserted: the machine is shared and noisy, and
the verdicts live in the benchmark's own output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bench_kit import assert_positive_stats, is_number, run_quick

from hotplex.testing.real_cli import require_cli

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
    data, printed_out = run_quick("engine.py", tmp_path)

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
    printed = [line for line in printed_out.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert len(printed) == 3, printed_out
