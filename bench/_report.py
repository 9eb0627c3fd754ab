"""What the benchmarks share: sample statistics, verdict lines and progress messages.

bench/ is not a package: a benchmark run as ``python bench/<name>.py`` has its own folder
first on ``sys.path`` and imports this module as ``_report``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["BenchError", "Stats", "Verdict", "ms", "progress"]

_started = time.perf_counter()


class BenchError(RuntimeError):
    """A run did not go as expected; the figures would be meaningless."""


@dataclass(frozen=True)
class Stats:
    """n, median, p10 and p90 of a sample (means are never reported)."""

    n: int
    median: float
    p10: float
    p90: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        if not values:
            raise BenchError("no samples")
        if len(values) == 1:
            return cls(1, values[0], values[0], values[0])
        deciles = statistics.quantiles(values, n=10, method="inclusive")
        return cls(len(values), statistics.median(values), deciles[0], deciles[-1])


def ms(seconds: Sequence[float]) -> Stats:
    """Stats of durations in seconds, in milliseconds."""
    return Stats.of([s * 1000.0 for s in seconds])


@dataclass(frozen=True)
class Verdict:
    target: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.target}: {self.detail}"


def elapsed() -> float:
    """Seconds since the benchmark started (this module's import)."""
    return time.perf_counter() - _started


def progress(message: str) -> None:
    print(f"[{elapsed():7.1f}s] {message}", file=sys.stderr, flush=True)
