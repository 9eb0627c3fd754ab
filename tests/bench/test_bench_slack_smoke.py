"""Smoke test of the Slack benchmark (bench/slack.py): it runs end to end against the fake
Slack and reports every figure. The targets are not asserted (the machine is shared and
noisy): the verdicts live in the benchmark's own output."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench_kit import assert_positive_stats, run_quick


@pytest.mark.timeout(300)
def test_quick_slack_benchmark_reports_every_figure(tmp_path: Path) -> None:
    data, printed_out = run_quick("slack.py", tmp_path)
    assert_positive_stats("first_text_ms", data["first_text_ms"])
    assert data["first_text_ms"]["n"] == data["meta"]["samples"] == 5
    threads = data["threads"]
    assert threads["threads"] == 10 and threads["calls"] >= 20
    assert threads["failed"] == 0 and threads["rate_limited"] == 0
    assert_positive_stats("threads first_text_ms", threads["first_text_ms"])
    printed = [line for line in printed_out.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert len(printed) == len(data["verdicts"]) == 2, printed_out
