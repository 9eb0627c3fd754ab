"""Fixtures for the WAF tests, and the corpus metrics table in the terminal summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hotplex.waf import Waf, shipped_rules

CORPUS = Path(__file__).with_name("corpus.jsonl")
REPORT: list[str] = []


@pytest.fixture(scope="session")
def waf() -> Waf:
    return Waf(shipped_rules(), home="/home/dev")


@pytest.fixture(scope="session")
def corpus() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text("utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def report() -> list[str]:
    """Lines for the 'WAF corpus metrics' section of the terminal summary."""
    return REPORT


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT:
        terminalreporter.section("WAF corpus metrics")
        for line in REPORT:
            terminalreporter.write_line(line)
