"""OpenCode figures beside bench/engine.py's Claude Code ones: the shared `opencode serve`.

Run from the repo root: ``.venv/bin/python bench/opencode.py [--turns 30] [--sessions 10]``.
It starts the fake Anthropic API in-process (instant answers: every figure is OpenCode's and
HotPlex's own overhead, no model time) and drives the pinned ``node_modules/.bin/opencode``
through the engine:

- cold: the first session on a fresh server (server start + session + first turn);
- first turn of a new session on the warm server;
- hot: further turns on one session (median, p10/p90);
- memory: the server's VmRSS idle and with N sessions that each ran a turn, per session.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def progress(message: str) -> None:
    print(f"[bench/opencode] {message}", file=sys.stderr, flush=True)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def timed_turn(engine: object, key: str, prompt: str) -> float:
    start = time.perf_counter()
    turn = await engine.execute(key, prompt)  # type: ignore[attr-defined]
    events = await turn.collect(120)
    if events[-1].data["status"] != "ok":
        raise RuntimeError(f"turn failed: {[e.to_dict() for e in events[-3:]]}")
    return time.perf_counter() - start


async def run(turns: int, sessions: int) -> int:
    from hotplex.config import load_settings
    from hotplex.engine.engine import Engine
    from hotplex.providers.opencode import OpenCodeProvider
    from hotplex.testing.fake_anthropic import FakeAnthropic

    binary = ROOT / "node_modules" / ".bin" / "opencode"
    if not binary.exists():
        print(f"opencode not installed at {binary}: run `make setup`", file=sys.stderr)
        return 2
    import os

    with tempfile.TemporaryDirectory(prefix="hotplex-bench-oc-") as tmp:
        async with FakeAnthropic() as api:
            os.environ["ANTHROPIC_BASE_URL"] = api.base_url
            os.environ["ANTHROPIC_API_KEY"] = "sk-test"
            raw = {
                "engine": {"data_dir": f"{tmp}/data", "max_sessions": sessions + 4},
                "provider": {"type": "opencode", "binary": str(binary)},
            }
            settings = load_settings(None, text=yaml.safe_dump(raw), environ={}).settings
            provider = OpenCodeProvider(settings.provider, data_dir=settings.engine.data_dir)
            async with Engine(settings, provider) as engine:
                progress("cold: server start + first session + first turn")
                cold = await timed_turn(engine, "oc:cold", "hello cold")
                pid = provider.server_pid
                assert pid is not None
                idle = rss_mib(pid)
                progress(f"hot: {turns} turns on one session")
                hot = [await timed_turn(engine, "oc:cold", f"hot turn {i}") for i in range(turns)]
                progress(f"new sessions on the warm server: {sessions}")
                firsts = [
                    await timed_turn(engine, f"oc:s{i}", f"first turn {i}") for i in range(sessions)
                ]
                loaded = rss_mib(pid)
    hot_ms = [t * 1000 for t in hot]
    first_ms = [t * 1000 for t in firsts]
    print("milliseconds                                   n   median      p10      p90")
    print(f"{'cold (server start + session + turn)':44} {1:3} {cold * 1000:8.1f}")
    for label, values in (("first turn, new session, warm server", first_ms), ("hot turn", hot_ms)):
        print(
            f"{label:44} {len(values):3} {statistics.median(values):8.1f} "
            f"{quantile(values, 0.1):8.1f} {quantile(values, 0.9):8.1f}"
        )
    per_session = (loaded - idle) / max(1, sessions)
    print(
        f"\nserver RSS: {idle:.0f} MiB with 1 session -> {loaded:.0f} MiB with "
        f"{sessions + 1} sessions: {per_session:.1f} MiB per added session"
    )
    print(f"cold / hot: {cold * 1000 / statistics.median(hot_ms):.1f}x")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--sessions", type=int, default=10)
    args = parser.parse_args()
    return asyncio.run(run(args.turns, args.sessions))


if __name__ == "__main__":
    sys.exit(main())
