"""Outbound webhooks from ``hotplex serve`` as a real process, on SQLite and PostgreSQL:
every subscribed event reaches a receiver that verifies with ``standardwebhooks``, exactly
once per event id on the receiver's side, although the receiver fails and the daemon is
SIGKILLed with a request in flight; a dead receiver's deliveries end as dead letters, which
``hotplex webhook redeliver`` sends again."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import yaml
from webhook_kit import SECRET

from hotplex.address import session_id_for
from hotplex.config.models import DEFAULT_NAMESPACE
from hotplex.testing.daemon import Daemon
from hotplex.testing.fake_agent import write_wrapper
from hotplex.testing.webhook_receiver import Reply, WebhookReceiver

KEY = "k-webhook-0123456789"
TOKEN = "admin-webhook-0123456789"


def write_config(tmp_path: Path, db_url: str, subscription: dict[str, Any]) -> Path:
    config = {
        "engine": {"data_dir": str(tmp_path / "data"), "kill_grace": "1s"},
        "storage": {"url": db_url},
        "provider": {"binary": str(write_wrapper(tmp_path / "bin"))},
        "server": {
            "port": 0,
            "api_keys": [{"name": "tester", "key": KEY}],
            "admin_token": TOKEN,
            "rate_limit": {"enabled": False},
        },
        "plugins": {
            "webhook": {
                "allow_private_urls": True,
                "subscriptions": [{"name": "rx", "secret": SECRET, **subscription}],
            }
        },
    }
    path = tmp_path / "hotplex.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def event_ids(frames: list[dict[str, Any]], types: set[str]) -> set[str]:
    """The outbox ids of the frames' events (the client names sessions; the engine's id is
    the UUIDv5 of the web address)."""
    return {
        f"evt_{session_id_for('web:tester/' + f['session_id'], DEFAULT_NAMESPACE)}_{f['seq']}"
        for f in frames
        if f.get("type") in types
    }


async def cli(config: Path, daemon: Daemon, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hotplex",
        "--config",
        str(config),
        "webhook",
        *args,
        "--url",
        daemon.url,
        "--token",
        TOKEN,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, out.decode()
    return out.decode()


async def test_every_event_arrives_once_across_failures_and_a_sigkill(
    tmp_path: Path, db_url: str
) -> None:
    types = {"text", "done"}
    async with WebhookReceiver(SECRET) as rx:
        # two failures, then a request still in flight when the daemon is killed
        rx.script(500, Reply(503, retry_after=0), Reply(200, delay=2.0))
        subscription = {
            "url": rx.url,
            "events": sorted(types),
            "timeout": "3s",
            "retry_schedule": ["0.2s"] * 8,
            "concurrency": 1,
        }
        config = write_config(tmp_path, db_url, subscription)
        daemon = Daemon(config)
        await daemon.start()
        frames: list[dict[str, Any]] = []
        try:
            async with daemon.client(KEY) as client:
                for n in range(3):
                    frames += await client.execute("chat", f"before the crash {n}")
            await rx.wait_for(lambda: rx.arrived >= 3, timeout=20)  # one in flight now
        finally:
            await daemon.kill()
        await daemon.start()
        try:
            async with daemon.client(KEY) as client:
                frames += await client.execute("chat", "after the crash")
            expected = event_ids(frames, types)
            assert len(expected) == 8
            in_flight = rx.arrivals[2]  # its row was claimed, never acknowledged
            await rx.wait_for(
                lambda: expected <= rx.verified_ids() and len(rx.attempts(in_flight)) >= 2,
                timeout=40,
            )
        finally:
            assert await daemon.stop() == 0
    assert rx.verified_ids() == expected  # nothing else, each id processed once
    assert all(r.verified for r in rx.received)
    assert {r.answered for r in rx.received[:2]} == {500, 503}


async def test_a_dead_receiver_ends_in_dead_letters_and_redeliver_brings_it_back(
    tmp_path: Path, db_url: str
) -> None:
    async with WebhookReceiver(SECRET) as rx:
        rx.script(500, 500)
        subscription = {"url": rx.url, "events": ["done"], "retry_schedule": ["0.1s"]}
        config = write_config(tmp_path, db_url, subscription)
        daemon = Daemon(config)
        await daemon.start()
        try:
            async with daemon.client(KEY) as client:
                frames = await client.execute("chat", "hello")
            [done_id] = event_ids(frames, {"done"})
            await rx.wait_for(lambda: rx.arrived >= 2, timeout=20)
            for _ in range(100):
                dead = await cli(config, daemon, "dead", "rx")
                if done_id in dead:
                    break
                await asyncio.sleep(0.1)
            assert done_id in dead and "gave up after 2 attempts: HTTP 500" in dead
            listing = await cli(config, daemon, "list")
            assert "rx" in listing and "dead=1" in listing
            assert "1 deliveries of rx are due again" in await cli(
                config, daemon, "redeliver", "rx"
            )
            await rx.wait_for(lambda: done_id in rx.verified_ids(), timeout=20)
            assert "delivered (HTTP 200)" in await cli(config, daemon, "test", "rx")
            assert "dead=0" in await cli(config, daemon, "list")
        finally:
            assert await daemon.stop() == 0
    assert [r.answered for r in rx.attempts(done_id)] == [500, 500, 200]
