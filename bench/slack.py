"""Slack benchmark: how soon a reply shows in Slack, and many threads streaming at once.

HotPlex runs in this process with the Slack adapter in Socket Mode against the fake Slack
of ``hotplex.testing.slack`` (127.0.0.1, driven by the real slack-sdk and slack-bolt, with
Slack's own rate tiers: ``rate_limits="strict"``) and core's in-process fake agent, whose
turns stream one word per ``text_delta``. The adapter keeps its defaults
(``min_update_interval`` 1.2 s, native streams).

(a) first visible text: for each of ``--samples`` DMs, one after the other (1.5 s apart, so
    the adapter's write budget is idle), the time from
    the agent's first ``text_delta`` (stamped when the fake agent yields it) to the first
    call that makes text visible in the fake Slack (``chat.startStream``, or
    ``chat.postMessage`` when streams are refused), both on the monotonic clock.
(b) ten threads at once: ten @-mentions in ten threads of one channel arrive together;
    every answer streams for a few seconds. All must arrive complete, with no answer of
    the fake Slack being a 429 (the adapter paces one write budget for the workspace:
    also reported, the time each thread waited for its first visible text).

Run from the repository root::

    .venv/bin/python bench/slack.py [--samples N] [--json out.json] [--quick]

Exit status 0 even when a target is missed (the verdict lines say so).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml
from _report import BenchError, Stats, Verdict, ms, progress
from hotplex_slack import plugin

from hotplex.compose import compose
from hotplex.config import load_settings
from hotplex.events import AgentEvent, agent_event
from hotplex.hookspecs import hookimpl
from hotplex.plugins import make_plugin_manager
from hotplex.records import ProviderSpec
from hotplex.runtime import Runtime
from hotplex.testing.fakes import FakeAgentProcess, FakeProvider
from hotplex.testing.slack import FakeSlack

THREADS = 10
WORDS = 40
DELAY = 0.05  # seconds between the agent's events: a 40-word answer streams for ~2 s
TURN_TIMEOUT = 60.0
PAUSE = 1.5  # seconds between the samples of (a): more than the adapter's write interval
TARGET_FIRST_TEXT_MS = 200.0  # the first write waits for nothing but the Web API call
TEXT_CALLS = ("chat.startStream", "chat.postMessage")


class Stamped(FakeProvider):
    """The fake agent, noting when each turn yields its first text delta."""

    def __init__(self) -> None:
        super().__init__(delay=DELAY, default=self.turn)
        self.first_token: dict[str, float] = {}

    def turn(self, prompt: str) -> list[Any]:
        words = [f"{prompt}-w{i} " for i in range(WORDS)]

        def first(process: FakeAgentProcess) -> AgentEvent:
            self.first_token[prompt] = time.monotonic()
            return agent_event("text_delta", text=words[0])

        rest = [agent_event("text_delta", text=w) for w in words[1:]]
        return [first, *rest, agent_event("text", text="".join(words))]


@asynccontextmanager
async def running(slack: FakeSlack, agent: Stamped, data: Path) -> AsyncIterator[Runtime]:
    class Agent:
        @hookimpl
        def hotplex_register_providers(self) -> list[ProviderSpec]:
            return [ProviderSpec("fake", lambda ctx: agent)]

    pm = make_plugin_manager(
        entry_points=False, environ={}, extra=[("slack", plugin), ("agent", Agent())]
    )
    raw = {
        "engine": {"data_dir": str(data)},
        "provider": {"type": "fake"},
        "plugins": {
            "slack": {
                "enabled": True,
                "bot_token": slack.bot_token,
                "app_token": slack.app_token,
                "api_base_url": slack.api_base_url,
            }
        },
    }
    settings = load_settings(
        None, text=yaml.safe_dump(raw), sections=pm.config_sections().values(), environ={}
    ).settings
    async with compose(settings, pm) as runtime:
        await slack.wait_connected(timeout=30)
        yield runtime


def done_in(slack: FakeSlack, channel: str, ts: str, last: str) -> bool:
    return any(
        m.by_bot and last in m.text and m.streaming in (None, "completed")
        for m in slack.messages(channel, ts)
    )


async def first_visible(slack: FakeSlack, agent: Stamped, samples: int) -> list[float]:
    waits = []
    for i in range(samples):
        # the writes of the previous answer are 1.2 s apart: start from an idle workspace
        await asyncio.sleep(PAUSE)
        prompt = f"dm{i}"
        ts = await slack.user_message("DU1", "U1", prompt)
        last = f"{prompt}-w{WORDS - 1}"
        await slack.wait_for(lambda ts=ts, last=last: done_in(slack, "DU1", ts, last), TURN_TIMEOUT)
        shown = [
            c.at
            for c in slack.calls
            if c.method in TEXT_CALLS and c.ok and c.args.get("thread_ts") == ts
        ]
        if not shown or prompt not in agent.first_token:
            raise BenchError(f"sample {i}: no first token or no visible text")
        waits.append(min(shown) - agent.first_token[prompt])
    return waits


async def many_threads(slack: FakeSlack, agent: Stamped) -> dict[str, Any]:
    before = len(slack.calls)
    started = time.monotonic()
    threads = await asyncio.gather(
        *(slack.user_message("C1", "U1", f"t{i}", mention=True) for i in range(THREADS))
    )
    for i, ts in enumerate(threads):
        last = f"t{i}-w{WORDS - 1}"
        await slack.wait_for(lambda ts=ts, last=last: done_in(slack, "C1", ts, last), TURN_TIMEOUT)
    calls = slack.calls[before:]
    waits = []
    for i, ts in enumerate(threads):
        shown = [c.at for c in calls if c.method in TEXT_CALLS and c.args.get("thread_ts") == ts]
        waits.append(min(shown) - agent.first_token[f"t{i}"])
    return {
        "first_text_ms": asdict(ms(waits)),
        "threads": THREADS,
        "seconds": time.monotonic() - started,
        "calls": len(calls),
        "rate_limited": sum(1 for c in calls if c.status == 429),
        "failed": sum(1 for c in calls if not c.ok),
    }


async def run(samples: int) -> dict[str, Any]:
    agent = Stamped()
    with tempfile.TemporaryDirectory(prefix="bench-slack-") as folder:
        async with FakeSlack(rate_limits="strict") as slack:
            slack.add_channel("C1", members=["U1"])
            slack.add_dm("U1")
            async with running(slack, agent, Path(folder) / "data"):
                progress(f"(a) first visible text, {samples} DMs")
                first = ms(await first_visible(slack, agent, samples))
                progress(f"(b) {THREADS} threads streaming at once")
                threads = await many_threads(slack, agent)
    return {"first_text_ms": asdict(first), "threads": threads}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30, help="DMs for (a)")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--quick", action="store_true", help="5 samples (the smoke test)")
    args = parser.parse_args()
    samples = 5 if args.quick else args.samples
    print(f"hotplex Slack benchmark (Python {sys.version.split()[0]}, {platform.machine()})")
    figures = asyncio.run(run(samples))
    first = Stats(**figures["first_text_ms"])
    threads = figures["threads"]
    print(
        f"(a) first token -> first visible text: n={first.n} median {first.median:.1f} ms "
        f"(p10 {first.p10:.1f}, p90 {first.p90:.1f})"
    )
    shared = Stats(**threads["first_text_ms"])
    print(
        f"(b) {threads['threads']} threads at once: {threads['seconds']:.1f} s, "
        f"{threads['calls']} Web API calls, {threads['rate_limited']} answered 429; "
        f"first visible text median {shared.median:.0f} ms (p90 {shared.p90:.0f})"
    )
    verdicts = [
        Verdict(
            "first text shows soon",
            first.median <= TARGET_FIRST_TEXT_MS,
            f"median {first.median:.1f} ms (target <= {TARGET_FIRST_TEXT_MS:.0f} ms)",
        ),
        Verdict(
            "ten threads stream within Slack's limits",
            threads["rate_limited"] == 0 and threads["failed"] == 0,
            f"{threads['rate_limited']} answered 429, {threads['failed']} failed calls",
        ),
    ]
    for verdict in verdicts:
        print(verdict.line())
    if args.json:
        figures["verdicts"] = [asdict(v) for v in verdicts]
        figures["meta"] = {"samples": samples, "threads": THREADS, "words": WORDS}
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
