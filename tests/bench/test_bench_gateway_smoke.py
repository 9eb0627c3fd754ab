"""Smoke test of the gateway benchmark (bench/gateway.py): it runs end to end against a real
``hotplex serve`` with the fake agent and reports every figure.

The targets are not asserted (the machine is shared and noisy; the quick run holds 20
sessions, not 500): the verdicts live in the benchmark's own output.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bench_kit import assert_positive_stats, is_number, run_quick


@pytest.mark.timeout(300)
def test_quick_gateway_benchmark_reports_every_figure(tmp_path: Path) -> None:
    data, printed_out = run_quick("gateway.py", tmp_path)

    levels = data["levels"]
    assert [level["clients"] for level in levels] == data["meta"]["clients"] == [5, 20]
    for level in levels:
        assert level["held"] == level["clients"], level["errors"]
        assert level["turns_completed"] == level["turns_expected"] > 0, level["errors"]
        for name in ("turns_per_s", "events_per_s", "first_turns_s", "throughput_s"):
            assert is_number(level[name]) and level[name] > 0, name
        assert_positive_stats("turn_ms", level["turn_ms"])
        assert level["rss0_kib"] > 0 and level["rssn_kib"] > 0 and level["agent_rss_kib"] > 0
        assert is_number(level["per_session_bytes"])  # a difference: may be ~0 at quick sizes
        latency = level["latency"]
        assert latency["pairs"] == data["meta"]["pairs"] and latency["events_per_turn"] > 1
        assert_positive_stats("gateway_event_ms", latency["gateway_event_ms"])
        assert_positive_stats("raw_event_ms", latency["raw_event_ms"])
        for name in ("added_ms", "relay_added_ms"):  # paired differences: any sign
            assert latency[name]["n"] > 0
            assert all(is_number(latency[name][f]) for f in ("median", "p10", "p90"))

    verdicts = data["verdicts"]
    assert len(verdicts) == 3
    assert all(isinstance(v["passed"], bool) and v["detail"] for v in verdicts)
    printed = [line for line in printed_out.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert len(printed) == 3, printed_out
