"""Outbound webhooks in-process: subscribed events reach a receiver that verifies with the
``standardwebhooks`` package, signed with every secret during a rotation, filtered by type;
retries honour Retry-After; 3xx is a failure; 410 disables; the last failure dead-letters;
redeliver brings dead letters back; a private address is refused at connect time."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from hotplex_webhook.admin import WEBHOOKS
from webhook_kit import OLD_SECRET, SECRET, routes_client, subscription, webhook_hotplex

from hotplex.errors import ConfigError
from hotplex.events import AuditEvent
from hotplex.outbox import OUTBOX
from hotplex.testing.webhook_receiver import Reply, WebhookReceiver


async def test_subscribed_events_arrive_signed_and_filtered(tmp_path: Path) -> None:
    async with WebhookReceiver(SECRET) as rx:
        config = {
            "allow_private_urls": True,
            "subscriptions": [subscription(rx.url, events=["text", "done", "cron.*"])],
        }
        async with webhook_hotplex(tmp_path, config) as hp:
            await hp.adapter.dm("hello")
            await hp.runtime.emit(AuditEvent("cron.run", {"job": "nightly"}))
            await hp.runtime.emit(AuditEvent("waf.verdict", {"verdict": "allow"}))
            await rx.wait_for(lambda: len(rx.verified_ids()) == 3)
            await hp.runtime.emit(AuditEvent("cron.run", {"job": "late"}))
            await rx.wait_for(lambda: len(rx.verified_ids()) == 4)
    assert all(r.verified for r in rx.received)
    bodies = [r.json() for r in rx.received]
    assert sorted(b["type"] for b in bodies) == ["cron.run", "cron.run", "done", "text"]
    text = next(b for b in bodies if b["type"] == "text")
    assert text["kind"] == "event" and text["data"]["text"] == "echo: hello"
    assert text["id"] == rx.received[bodies.index(text)].webhook_id
    audit = next(b for b in bodies if b["type"] == "cron.run")
    assert audit["kind"] == "audit" and audit["id"].startswith("aud_")
    assert len(rx.received) == 4  # each once


async def test_a_rotation_signs_with_both_secrets(tmp_path: Path) -> None:
    async with WebhookReceiver(OLD_SECRET) as old_rx, WebhookReceiver(SECRET) as new_rx:
        subs = [
            subscription(old_rx.url, name="old", previous_secrets=[OLD_SECRET], events=["cron.*"]),
            subscription(new_rx.url, name="new", previous_secrets=[OLD_SECRET], events=["cron.*"]),
        ]
        async with webhook_hotplex(
            tmp_path, {"allow_private_urls": True, "subscriptions": subs}
        ) as hp:
            await hp.runtime.emit(AuditEvent("cron.run", {}))
            await old_rx.wait_for(lambda: len(old_rx.verified_ids()) == 1)
            await new_rx.wait_for(lambda: len(new_rx.verified_ids()) == 1)
    for rx in (old_rx, new_rx):
        [sent] = rx.received
        assert sent.verified and len(sent.signature.split(" ")) == 2


async def test_retries_honour_retry_after_and_3xx_is_a_failure(tmp_path: Path) -> None:
    async with WebhookReceiver(SECRET) as rx:
        rx.script(500, 302, Reply(429, retry_after=2), 200)
        sub = subscription(rx.url, events=["cron.*"], retry_schedule=["0.1s", "0.1s", "0.1s", "5s"])
        async with webhook_hotplex(
            tmp_path, {"allow_private_urls": True, "subscriptions": [sub]}
        ) as hp:
            await hp.runtime.emit(AuditEvent("cron.run", {}))
            await rx.wait_for(lambda: len(rx.verified_ids()) == 1, timeout=15)
    answers = [r.answered for r in rx.received]
    assert answers == [500, 302, 429, 200]
    assert len({r.webhook_id for r in rx.received}) == 1  # the same id every time
    assert rx.elsewhere_hits == 0  # the redirect was not followed
    assert rx.received[3].at - rx.received[2].at >= 1.9  # Retry-After: 2 beat the 0.1s step


async def test_410_disables_and_redeliver_brings_it_back(tmp_path: Path) -> None:
    async with WebhookReceiver(SECRET) as rx:
        rx.script(410)
        sub = subscription(rx.url, events=["cron.*"], concurrency=1)
        async with webhook_hotplex(
            tmp_path, {"allow_private_urls": True, "subscriptions": [sub]}
        ) as hp:
            hooks = hp.runtime.ctx.services.get(WEBHOOKS)
            assert hooks.outbound is not None
            await hp.runtime.emit(AuditEvent("cron.run", {"n": 1}))
            await rx.wait_for(lambda: len(rx.received) == 1)
            await wait_until(lambda: hooks.outbound.health["rx"].disabled is not None)
            await hp.runtime.emit(AuditEvent("cron.run", {"n": 2}))
            outbox = hp.runtime.ctx.services.get(OUTBOX)
            await wait_until_async(lambda: dead_count(outbox, 1))
            await wait_until_async(lambda: pending_count(outbox, 1))  # kept, not sent
            async with routes_client(hp) as client:
                listing = await (await client.get("/admin/v1/webhooks")).json()
                [entry] = listing["subscriptions"]
                assert entry["disabled"].startswith("HTTP 410")
                dead = await (await client.get("/admin/v1/webhooks/dead?subscription=rx")).json()
                assert [d["type"] for d in dead["dead"]] == ["cron.run"]
                assert entry["pending"] == 1 and entry["dead"] == 1
                answer = await client.post("/admin/v1/webhooks/rx/redeliver", json={})
                assert (await answer.json())["redelivered"] == 1
            await rx.wait_for(lambda: len(rx.verified_ids()) == 2)
    first, *again = rx.received
    assert first.answered == 410 and len(again) == 2  # nothing was sent while disabled
    assert first.webhook_id in {r.webhook_id for r in again}
    assert sorted(r.json()["data"]["n"] for r in again) == [1, 2]


async def test_the_last_failure_dead_letters_and_redeliver_sends_it(tmp_path: Path) -> None:
    async with WebhookReceiver(SECRET) as rx:
        rx.script(503, 503, 503)
        sub = subscription(rx.url, events=["cron.*"], retry_schedule=["0.1s", "0.1s"])
        async with webhook_hotplex(
            tmp_path, {"allow_private_urls": True, "subscriptions": [sub]}
        ) as hp:
            hooks = hp.runtime.ctx.services.get(WEBHOOKS)
            assert hooks.outbound is not None
            await hp.runtime.emit(AuditEvent("cron.run", {}))
            await rx.wait_for(lambda: len(rx.received) == 3)
            outbox = hp.runtime.ctx.services.get(OUTBOX)
            await wait_until_async(lambda: dead_count(outbox, 1))
            [dead] = await hooks.outbound.dead_letters("rx")
            assert (
                dead["attempts"] == 3 and "gave up after 3 attempts: HTTP 503" in dead["last_error"]
            )
            assert await hooks.outbound.redeliver("rx") == 1
            await rx.wait_for(lambda: len(rx.verified_ids()) == 1)
            assert await hooks.outbound.dead_letters("rx") == []
    assert len({r.webhook_id for r in rx.received}) == 1


async def test_a_hanging_receiver_times_out_and_does_not_hold_back_another(tmp_path: Path) -> None:
    async with WebhookReceiver(SECRET) as slow, WebhookReceiver(SECRET) as fast:
        slow.script(Reply(200, delay=30))
        subs = [
            subscription(slow.url, name="slow", events=["cron.*"], timeout="1s"),
            subscription(fast.url, name="fast", events=["cron.*"]),
        ]
        async with webhook_hotplex(
            tmp_path, {"allow_private_urls": True, "subscriptions": subs}
        ) as hp:
            hooks = hp.runtime.ctx.services.get(WEBHOOKS)
            assert hooks.outbound is not None
            started = time.monotonic()
            for n in range(5):
                await hp.runtime.emit(AuditEvent("cron.run", {"n": n}))
            await fast.wait_for(lambda: len(fast.verified_ids()) == 5)
            assert time.monotonic() - started < 1.0  # not behind the slow one
            await wait_until(lambda: hooks.outbound.health["slow"].failed >= 1, timeout=5)
            assert "no answer within 1s" in (hooks.outbound.health["slow"].last_error or "")


async def test_a_private_address_is_refused(tmp_path: Path) -> None:
    async with WebhookReceiver(SECRET) as rx:
        by_name = subscription(f"http://localhost:{rx.port}/hook", events=["cron.*"])
        async with webhook_hotplex(tmp_path, {"subscriptions": [by_name]}) as hp:
            hooks = hp.runtime.ctx.services.get(WEBHOOKS)
            assert hooks.outbound is not None
            await hp.runtime.emit(AuditEvent("cron.run", {}))
            outbox = hp.runtime.ctx.services.get(OUTBOX)
            await wait_until_async(lambda: dead_count(outbox, 1))
            [dead] = await hooks.outbound.dead_letters("rx")
            assert "not on a public address" in dead["last_error"]
        with pytest.raises(ConfigError, match="not a public address"):
            async with webhook_hotplex(tmp_path / "2", {"subscriptions": [subscription(rx.url)]}):
                pass
    assert rx.received == []


# -- helpers ---------------------------------------------------------------------------


async def dead_count(outbox: object, n: int) -> bool:
    from hotplex.outbox import Outbox

    assert isinstance(outbox, Outbox)
    counts = await outbox.counts()
    return counts.get("webhook:rx", {}).get("dead", 0) == n


async def pending_count(outbox: object, n: int) -> bool:
    from hotplex.outbox import Outbox

    assert isinstance(outbox, Outbox)
    counts = await outbox.counts()
    return counts.get("webhook:rx", {}).get("pending", 0) == n


async def wait_until(condition: object, timeout: float = 10.0) -> None:
    assert callable(condition)
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def wait_until_async(condition: object, timeout: float = 10.0) -> None:
    assert callable(condition)
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.02)
