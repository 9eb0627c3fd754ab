"""Benchmark of outbound webhooks: events per second from the durable outbox to a local
receiver, and the delay from an event's commit to its receipt.

Run: .venv/bin/python bench/webhooks.py [--quick] [--backend postgresql] [--json out]

Both phases use the real parts: core's storage sink writing outbox rows in the events'
transaction (a SQLite file, or a scratch PostgreSQL database), the webhook plugin's
delivery worker (signing, HTTP, acknowledging), and the fake receiver of
``hotplex.testing`` verifying every request with the ``standardwebhooks`` package, on
127.0.0.1, all in one process and event loop.

1. Throughput: ``--events`` rows are committed first, then the worker starts; events per
   second = rows / time until the receiver verified the last one.
2. Delay: with the worker idle and waiting, ``--samples`` events are committed one at a time
   (``--interval`` apart); the delay is the receiver's receipt time minus the time the
   storage sink's commit returned (both ``time.time()`` of this process). p50 and p99.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _report import BenchError, Verdict, progress
from hotplex_webhook.config import Subscription
from hotplex_webhook.outbound import Outbound
from hotplex_webhook.store import MIGRATIONS

from hotplex.events import AgentEvent
from hotplex.outbox import OutboxFilter
from hotplex.storage.outbox import SqlOutbox
from hotplex.storage.sink import StorageSink
from hotplex.storage.sql import SqlStorage
from hotplex.testing.databases import scratch_database
from hotplex.testing.webhook_receiver import WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"bench-secret-0123456789").decode()
CONSUMER = "webhook:bench"
#: Targets on the 2-core VM.
TARGET_RATE = 200.0  # events per second
TARGET_P99_MS = 250.0


def event(seq: int) -> AgentEvent:
    text = f"event {seq} " + "x" * 150  # ~200-byte events
    return AgentEvent(type="text", data={"text": text}, session_id="bench", turn_id="t", seq=seq)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(args: argparse.Namespace, data: Path) -> dict[str, Any]:
    async with scratch_database(args.backend, data) as url:
        return await measure(args, url)


async def measure(args: argparse.Namespace, url: str) -> dict[str, Any]:
    storage = SqlStorage(url, migrations=MIGRATIONS)
    await storage.open()
    outbox = SqlOutbox(storage)
    sink = StorageSink(storage, outbox=OutboxFilter({CONSUMER: ["*"]}), notify=outbox)
    try:
        async with WebhookReceiver(SECRET) as rx:
            sub = Subscription.model_validate(
                {"name": "bench", "url": rx.url, "secret": SECRET, "concurrency": args.concurrency}
            )
            # 1. throughput: fill the outbox, then drain it
            progress(f"committing {args.events} events")
            for start in range(1, args.events + 1, 50):
                await sink.handle(
                    [event(s) for s in range(start, min(start + 50, args.events + 1))]
                )
            outbound = Outbound([sub], outbox, storage, allow_private=True, poll=0.05)
            began = time.perf_counter()
            async with outbound:
                await rx.wait_for(lambda: len(rx.verified_ids()) >= args.events, timeout=600)
                drained = time.perf_counter() - began
                rate = args.events / drained
                progress(f"throughput: {rate:.0f} events/s")
                # 2. delay from commit to receipt, one event at a time
                committed: dict[str, float] = {}
                base = args.events + 1
                for n in range(args.samples):
                    seq = base + n
                    await sink.handle([event(seq)])
                    committed[f"evt_bench_{seq}"] = time.time()
                    await asyncio.sleep(args.interval)
                await rx.wait_for(lambda: set(committed) <= rx.verified_ids(), timeout=120)
    finally:
        await storage.close()
    first_receipt = {}
    for r in rx.received:
        if r.verified and r.webhook_id in committed and r.webhook_id not in first_receipt:
            first_receipt[r.webhook_id] = r.at
    delays = [(first_receipt[i] - committed[i]) * 1000.0 for i in committed]
    if len(delays) != args.samples:
        raise BenchError("not every sampled event arrived")
    duplicates = len(rx.received) - len(rx.verified_ids())
    return {
        "storage": storage.dialect,
        "events": args.events,
        "concurrency": args.concurrency,
        "throughput_events_per_s": rate,
        "drain_s": drained,
        "delay_samples": len(delays),
        "delay_p50_ms": statistics.median(delays),
        "delay_p99_ms": quantile(delays, 0.99),
        "delay_max_ms": max(delays),
        "duplicates": duplicates,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small samples (the smoke test)")
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="a SQLite file in a temp dir, or a scratch database on 127.0.0.1:5432",
    )
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.events, args.samples = 300, 40
    with tempfile.TemporaryDirectory(prefix="hotplex-bench-webhooks-") as tmp:
        report = asyncio.run(run(args, Path(tmp)))
    print(
        f"storage {report['storage']}, {report['events']} events, "
        f"concurrency {report['concurrency']}"
    )
    print(f"throughput       {report['throughput_events_per_s']:10.0f} events/s")
    print(
        f"commit->receipt  p50 {report['delay_p50_ms']:8.1f} ms   "
        f"p99 {report['delay_p99_ms']:8.1f} ms   max {report['delay_max_ms']:8.1f} ms "
        f"(n={report['delay_samples']})"
    )
    verdicts = [
        Verdict(
            f"throughput >= {TARGET_RATE:.0f} events/s",
            report["throughput_events_per_s"] >= TARGET_RATE,
            f"{report['throughput_events_per_s']:.0f}",
        ),
        Verdict(
            f"commit->receipt p99 <= {TARGET_P99_MS:.0f} ms",
            report["delay_p99_ms"] <= TARGET_P99_MS,
            f"{report['delay_p99_ms']:.1f} ms",
        ),
        Verdict("no duplicate receipts", report["duplicates"] == 0, str(report["duplicates"])),
    ]
    for verdict in verdicts:
        print(verdict.line())
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
