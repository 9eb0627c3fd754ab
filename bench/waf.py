"""Benchmark of the command WAF: scan time of typical prompts, 10 KB and 1 MB prompts, and
a regular-expression denial-of-service input compared with Python's backtracking ``re``.

Run: .venv/bin/python bench/waf.py [--quick]

Targets (2-core machine): p99 under 2 ms at 10 KB and under 100 ms at 1 MB.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from hotplex.waf import Waf, shipped_rules
from hotplex.waf._re2 import compile_pattern

WORDS = (
    "the",
    "scheduler",
    "cleanup",
    "job",
    "retries",
    "webhook",
    "parser",
    "config",
    "session",
    "engine",
    "gateway",
    "timeout",
    "handler",
    "request",
    "response",
    "cache",
    "database",
    "migration",
    "index",
    "query",
    "latency",
    "release",
    "branch",
    "commit",
    "review",
    "module",
    "function",
    "test",
    "fixture",
    "worker",
    "queue",
    "deploy",
    "container",
    "image",
    "build",
    "log",
    "metric",
    "trace",
    "error",
    "warning",
    "user",
    "token",
    "route",
    "service",
)
TYPICAL = [
    "Can you refactor the auth middleware to use async/await and add tests?",
    "Run `npm test` and fix whatever fails, then commit with a short message.",
    "Why is my pytest run hanging on test_socket? Here is the trace:\n```\n{trace}\n```",
    "What does `rm -rf /` do, and why does coreutils refuse it by default?",
    "Delete node_modules and dist then reinstall: `rm -rf node_modules dist && npm ci`",
    "Add a retry with exponential backoff to the webhook sender in `{name}.py`.",
    "Please review this function:\n```python\ndef {name}(x):\n    return [i * 2 for i in x]\n```",
    "The CI log shows `rm -rf $WORKSPACE/build` failed with EACCES; what changed in {name}?",
    "install the linter with `pip install ruff` and run `ruff check .`",
    "Rename `{name}` to `{name}_v2` across the project and update the docs.",
    "grep the repo for `curl | sh` and list the files that still mention it",
    "Kill the flaky test in tests/test_{name}.py and open an issue to fix it properly.",
]


# command names that dev prose mentions; each makes its sentence worth tokenising
DEV_WORDS = ("python", "docker", "curl", "bash", "ssh", "kubectl", "npm", "git", "sudo")


def sentence(rnd: random.Random) -> str:
    words = rnd.choices(WORDS, k=rnd.randint(8, 18))
    if rnd.random() < 0.3:
        words.insert(rnd.randrange(len(words)), rnd.choice(DEV_WORDS))
    return " ".join(words).capitalize() + rnd.choice([".", ".", "?", "!"])


def typical_prompts(rnd: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        name = "".join(rnd.choices("abcdefghijklmnop", k=8))
        trace = "\n".join(
            f'  File "/srv/app/{name}.py", line {rnd.randint(1, 900)}'
            for _ in range(rnd.randint(2, 12))
        )
        out.append(rnd.choice(TYPICAL).format(name=name, trace=trace))
    return out


def realistic(rnd: random.Random, size: int) -> str:
    """A long prompt: prose, Python and shell code blocks, and a pasted log."""
    parts: list[str] = []
    total = 0
    n = 0
    while total < size:
        n += 1
        kind = rnd.random()
        if kind < 0.45:
            chunk = " ".join(sentence(rnd) for _ in range(rnd.randint(3, 8)))
        elif kind < 0.65:
            lines = [
                f"def handler_{n}_{i}(request):\n    value = request.get('k{i}')\n"
                f"    return process(value, retries={rnd.randint(1, 9)})"
                for i in range(6)
            ]
            chunk = "```python\n" + "\n".join(lines) + "\n```"
        elif kind < 0.8:
            lines = [
                f"2024-05-{rnd.randint(1, 28):02d}T{rnd.randint(0, 23):02d}:"
                f"{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}Z INFO step {n}.{i}: "
                f"{rnd.choice(['npm ci', 'pytest -q', 'docker build -t app .', 'make lint'])}"
                f" finished in {rnd.randint(1, 999)} ms"
                for i in range(12)
            ]
            chunk = "```\n" + "\n".join(lines) + "\n```"
        else:
            port = 8000 + n % 100
            chunk = (
                f"```bash\ncd services/svc{n}\nnpm ci\nnpm run build\n"
                f"rm -rf dist/tmp-{n}\ncurl -fsS http://localhost:{port}/health\n```"
            )
        parts.append(chunk)
        total += len(chunk) + 2
    return "\n\n".join(parts)[:size]


@dataclass
class Timing:
    """Median and p99 in milliseconds, of wall-clock time and of this process's CPU time."""

    wall_median: float
    wall_p99: float
    cpu_median: float
    cpu_p99: float

    def __str__(self) -> str:
        return (
            f"median {self.wall_median:8.3f} ms  p99 {self.wall_p99:8.3f} ms   "
            f"(CPU: median {self.cpu_median:8.3f} ms  p99 {self.cpu_p99:8.3f} ms)"
        )


def _stats(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    return statistics.median(samples) * 1000, p99 * 1000


def measure(fn: Callable[[], object], runs: int) -> Timing:
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return Timing(*_stats(wall), *_stats(cpu))


# A pattern a person might write to catch "any words, then /": the nested quantifier makes
# a backtracking engine try exponentially many ways to split the words before failing.
EVIL_PATTERN = r"^(\S+\s?)+\s/$"
EVIL_INPUT = "rm" + " -rf" * 16 + " x"


def _python_re(queue: multiprocessing.Queue[float]) -> None:
    start = time.perf_counter()
    re.match(EVIL_PATTERN, EVIL_INPUT)
    queue.put(time.perf_counter() - start)


def redos(timeout: float) -> tuple[float, float | None]:
    pattern = compile_pattern(EVIL_PATTERN)
    start = time.perf_counter()
    pattern.match(EVIL_INPUT)
    re2_ms = (time.perf_counter() - start) * 1000
    queue: multiprocessing.Queue[float] = multiprocessing.Queue()
    process = multiprocessing.Process(target=_python_re, args=(queue,), daemon=True)
    process.start()
    process.join(timeout)
    if process.is_alive():
        process.terminate()
        process.join()
        return re2_ms, None
    return re2_ms, queue.get() * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    args = parser.parse_args()
    quick = args.quick
    rnd = random.Random(20240501)
    waf = Waf(shipped_rules())
    print(f"hotplex WAF benchmark ({len(waf.rules)} rules, Python {sys.version.split()[0]})")

    prompts = typical_prompts(rnd, 200)
    index = iter(range(10**9))
    timing = measure(
        lambda: waf.check_prompt(prompts[next(index) % len(prompts)]), 500 if quick else 3000
    )
    print(f"typical prompts (<2 KB):   {timing}")

    commands = [p.split("`")[1] for p in prompts if "`" in p]
    index = iter(range(10**9))
    timing = measure(
        lambda: waf.check_command(commands[next(index) % len(commands)]), 500 if quick else 3000
    )
    print(f"typical commands:          {timing}")

    results = []
    ten_kb = [realistic(rnd, 10_240) for _ in range(50)]
    index = iter(range(10**9))
    timing = measure(
        lambda: waf.check_prompt(ten_kb[next(index) % len(ten_kb)]), 300 if quick else 1000
    )
    results.append(("10 KB prompt", timing, 2.0))
    print(f"10 KB prompts:             {timing}")

    megabytes = [realistic(rnd, 1_048_000) for _ in range(3)]
    index = iter(range(10**9))
    timing = measure(
        lambda: waf.check_prompt(megabytes[next(index) % len(megabytes)]), 6 if quick else 30
    )
    results.append(("1 MB prompt", timing, 100.0))
    print(f"1 MB prompts:              {timing}")

    hostile = "rm" + " -rf" * 200_000 + " x"
    timing = measure(lambda: waf.check_command(hostile), 3)
    print(f"800 KB flag-storm command: {timing}")

    re2_ms, python_ms = redos(timeout=5.0)
    shown = "> 5000 ms (killed)" if python_ms is None else f"{python_ms:.1f} ms"
    print(
        f"ReDoS pattern {EVIL_PATTERN!r} on {len(EVIL_INPUT)} characters: "
        f"RE2 {re2_ms:.3f} ms, Python re {shown}"
    )
    print("WAF on the same input:", f"{measure(lambda: waf.check_command(EVIL_INPUT), 100)}")

    # The machine is shared, so other processes can stretch wall-clock time: the targets
    # are judged on CPU time, and the wall-clock p99 is shown beside it.
    failed = False
    for name, timing, target in results:
        ok = timing.cpu_p99 < target
        failed |= not ok
        print(
            f"{'PASS' if ok else 'FAIL'}  {name}: p99 {timing.cpu_p99:.2f} ms CPU, "
            f"{timing.wall_p99:.2f} ms wall-clock (target < {target:g} ms)"
        )
    ok = python_ms is None or python_ms > 100 * max(re2_ms, 0.01)
    print(f"{'PASS' if ok else 'FAIL'}  ReDoS contrast: RE2 stays linear where re backtracks")
    return 1 if failed or not ok else 0


if __name__ == "__main__":
    sys.exit(main())
