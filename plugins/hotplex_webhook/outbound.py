"""Outbound delivery: one worker per subscription, fed by core's durable outbox.

Each subscription is the outbox consumer ``webhook:<name>``. Its worker claims up to
``concurrency`` due rows (a claim leases them for the timeout plus a margin, so rows of a
daemon killed mid-request are claimed again, with the same ``webhook-id``), posts them at
once, acknowledges the delivered ones in one write and schedules or dead-letters the rest
(:mod:`hotplex_webhook.attempt`). Workers share nothing but the HTTP connector, so a slow
or dead receiver holds back only its own subscription; the agents never wait for any of it
(the storage sink only writes rows).

A 410 disables the subscription: its pending rows become dead letters and it takes no new
ones until ``redeliver`` (CLI or admin API) brings them back; the disabled state is kept in
the plugin's table ``webhook_disabled``, so a restart does not undo it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from sqlalchemy import Column, Float, MetaData, String, Table, Text, delete, select

from hotplex.aio import cancel_and_wait
from hotplex.outbox import Outbox, OutboxRow
from hotplex.storage.sql import SqlStorage
from hotplex_webhook.attempt import Result, attempt, next_delay
from hotplex_webhook.config import Subscription, consumer_name
from hotplex_webhook.guard import GuardedResolver

__all__ = ["Health", "Outbound", "disabled_table"]

log = logging.getLogger(__name__)

#: Seconds a claim outlives the request's timeout before the row is due again.
LEASE_MARGIN = 5.0
#: How often an idle worker looks for rows due by now (retries, other daemons' rows).
POLL = 1.0

_md = MetaData()
disabled_table = Table(
    "webhook_disabled",
    _md,
    Column("name", String, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("disabled_at", Float, nullable=False),
)


@dataclass
class Health:
    """What a subscription's worker saw (since this daemon started)."""

    delivered: int = 0
    failed: int = 0
    consecutive_failures: int = 0
    last_success_at: float | None = None
    last_failure_at: float | None = None
    last_error: str | None = None
    disabled: str | None = None  # why, when disabled
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def to_dict(self) -> dict[str, Any]:
        return {
            "delivered": self.delivered,
            "failed": self.failed,
            "consecutive_failures": self.consecutive_failures,
            "last_success_at": self.last_success_at,
            "last_failure_at": self.last_failure_at,
            "last_error": self.last_error,
            "disabled": self.disabled,
        }


class Outbound:
    """The subscriptions' workers over ``outbox`` (start with ``async with``)."""

    def __init__(
        self,
        subscriptions: Sequence[Subscription],
        outbox: Outbox,
        storage: SqlStorage,
        *,
        allow_private: bool,
        poll: float = POLL,
    ) -> None:
        self.subscriptions: dict[str, Subscription] = {s.name: s for s in subscriptions}
        self.outbox = outbox
        self.storage = storage
        self.allow_private = allow_private
        self.poll = poll
        self.health: dict[str, Health] = {name: Health() for name in self.subscriptions}
        self._http: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Outbound:
        for name, reason in (await self._load_disabled()).items():
            if name in self.health:
                self.health[name].disabled = reason
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(allow_private=self.allow_private), limit=0
        )
        self._http = aiohttp.ClientSession(connector=connector, trust_env=False)
        self._tasks = [
            asyncio.create_task(self._run(sub), name=f"webhook:{sub.name}")
            for sub in self.subscriptions.values()
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await cancel_and_wait(*self._tasks)
        if self._http is not None:
            await self._http.close()

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise RuntimeError("the webhook workers are not started")
        return self._http

    # -- the worker ----------------------------------------------------------------------

    async def _run(self, sub: Subscription) -> None:
        consumer = consumer_name(sub.name)
        health = self.health[sub.name]
        while True:
            try:
                if health.disabled is not None:
                    await health.wake.wait()
                    health.wake.clear()
                    continue
                rows = await self.outbox.claim(
                    consumer, limit=sub.concurrency, lease=sub.timeout + LEASE_MARGIN
                )
                if rows:
                    await self._deliver(sub, rows)
                else:
                    await self.outbox.wait(consumer, self.poll)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook worker %s failed; going on", sub.name)
                await asyncio.sleep(self.poll)

    async def _deliver(self, sub: Subscription, rows: list[OutboxRow]) -> None:
        secrets = [s.get_secret_value() for s in (sub.secret, *sub.previous_secrets)]
        results = await asyncio.gather(
            *(
                attempt(
                    self.http,
                    sub.url,
                    row,
                    secrets,
                    timeout=sub.timeout,
                    allow_private=self.allow_private,
                )
                for row in rows
            )
        )
        delivered = [
            row.id for row, r in zip(rows, results, strict=True) if r.verdict == "delivered"
        ]
        await self.outbox.ack(delivered)
        health = self.health[sub.name]
        now = time.time()
        if delivered:
            health.delivered += len(delivered)
            health.consecutive_failures = 0
            health.last_success_at = now
        for row, result in zip(rows, results, strict=True):
            if result.verdict != "delivered":
                await self._failed(sub, row, result, now)

    async def _failed(self, sub: Subscription, row: OutboxRow, result: Result, now: float) -> None:
        health = self.health[sub.name]
        health.failed += 1
        health.consecutive_failures += 1
        health.last_failure_at = now
        health.last_error = result.error
        log.warning("webhook %s: %s failed: %s", sub.name, row.event_id, result.error)
        if result.verdict == "gone":
            await self.disable(sub.name, result.error)
            return
        if result.verdict == "refused":
            await self.outbox.dead([row.id], result.error)
            return
        delay = next_delay(sub.retry_schedule, row.attempts)
        if delay is None:
            await self.outbox.dead(
                [row.id], f"gave up after {row.attempts} attempts: {result.error}"
            )
            return
        if result.retry_after is not None:
            delay = max(delay, result.retry_after)
        await self.outbox.retry(row.id, now + delay, result.error)

    # -- disabling and redelivery ----------------------------------------------------------

    async def disable(self, name: str, reason: str) -> None:
        """Stop delivering to ``name``; its pending rows become dead letters. Called by the
        subscription's own worker, so nothing of it is claimed meanwhile; it shows as
        disabled once its rows are dead letters."""
        async with self.storage.write() as conn:
            await conn.execute(delete(disabled_table).where(disabled_table.c.name == name))
            await conn.execute(
                disabled_table.insert().values(name=name, reason=reason, disabled_at=time.time())
            )
        count = await self.outbox.give_up(consumer_name(name), f"endpoint disabled: {reason}")
        self.health[name].disabled = reason
        log.warning("webhook %s disabled (%s); %d deliveries dead-lettered", name, reason, count)

    async def redeliver(self, name: str, ids: Sequence[int] | None = None) -> int:
        """Enable ``name`` again and make its dead letters (all, or ``ids``) due now."""
        if name not in self.subscriptions:
            raise KeyError(name)
        async with self.storage.write() as conn:
            await conn.execute(delete(disabled_table).where(disabled_table.c.name == name))
        health = self.health[name]
        health.disabled = None
        health.consecutive_failures = 0
        count = await self.outbox.redeliver(consumer_name(name), ids)
        health.wake.set()
        return count

    async def _load_disabled(self) -> dict[str, str]:
        async with self.storage.read() as conn:
            result = await conn.execute(select(disabled_table.c.name, disabled_table.c.reason))
            return {name: reason for name, reason in result.all()}

    # -- views -----------------------------------------------------------------------------

    async def describe(self) -> list[dict[str, Any]]:
        """Every subscription with its health and outbox counts (no secrets)."""
        counts: Mapping[str, dict[str, Any]] = await self.outbox.counts()
        out = []
        for name, sub in self.subscriptions.items():
            queue = counts.get(
                consumer_name(name), {"pending": 0, "dead": 0, "oldest_pending": None}
            )
            out.append(
                {
                    "name": name,
                    "url": sub.url,
                    "events": list(sub.events),
                    **self.health[name].to_dict(),
                    **queue,
                }
            )
        return out

    async def dead_letters(self, name: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        consumer = None if name is None else consumer_name(name)
        rows = await self.outbox.dead_letters(consumer, limit=limit)
        prefix = consumer_name("")
        return [
            {**row.to_dict(), "subscription": row.consumer.removeprefix(prefix)}
            for row in rows
            if row.consumer.startswith(prefix)
        ]

    async def test(self, name: str) -> Result:
        """Send a ``webhook.test`` message to ``name`` now (not through the outbox)."""
        sub = self.subscriptions[name]
        now = time.time()
        row = OutboxRow(
            id=0,
            consumer=consumer_name(name),
            event_id=f"test_{int(now * 1000)}",
            type="webhook.test",
            payload={
                "id": f"test_{int(now * 1000)}",
                "kind": "test",
                "type": "webhook.test",
                "ts": now,
                "data": {},
            },
            state="pending",
            attempts=1,
            next_attempt_at=now,
            last_error=None,
            created_at=now,
            updated_at=now,
        )
        secrets = [s.get_secret_value() for s in (sub.secret, *sub.previous_secrets)]
        return await attempt(
            self.http, sub.url, row, secrets, timeout=sub.timeout, allow_private=self.allow_private
        )
