"""Smoke test of the webhook benchmark (bench/webhooks.py): it runs end to end and reports
every figure. Its targets are judged in its own output, not here (the machine is shared)."""

from __future__ import annotations

from pathlib import Path

from bench_kit import is_number, run_quick


def test_the_webhook_benchmark_reports_every_figure(tmp_path: Path) -> None:
    report, printed = run_quick("webhooks.py", tmp_path)
    assert report["storage"] == "sqlite" and report["events"] == 300
    for name in ("throughput_events_per_s", "drain_s", "delay_p50_ms", "delay_p99_ms"):
        assert is_number(report[name]) and report[name] > 0, (name, report)
    assert report["delay_p50_ms"] <= report["delay_p99_ms"] <= report["delay_max_ms"]
    assert report["delay_samples"] == 40
    assert report["duplicates"] == 0
    assert "events/s" in printed and "p99" in printed
