"""The storage records core registers: the SQLAlchemy backend (``trylast``, so a plugin may
replace it for a scheme), the storage sink, and the retention task.

Nothing here imports SQLAlchemy; the factories do, when they are called.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from hotplex.aio import cancel_and_wait
from hotplex.context import PluginContext
from hotplex.errors import ConfigError, PluginError
from hotplex.events import AgentEvent, AuditEvent
from hotplex.interfaces import HookSink, Storage
from hotplex.outbox import OUTBOX, Outbox, OutboxFilter
from hotplex.records import ResourceSpec, SinkSpec, StorageSpec

__all__ = [
    "RETENTION_INTERVAL",
    "SCHEMES",
    "make_outbox",
    "make_sql_storage",
    "make_storage_sink",
    "outbox_filter",
    "prune_expired",
    "retention_resource",
    "run_retention",
    "storage_records",
    "storage_sink_spec",
]

log = logging.getLogger(__name__)

#: URL schemes the built-in backend handles.
SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")
#: Seconds between two retention passes.
RETENTION_INTERVAL = 6 * 3600.0


def make_sql_storage(ctx: PluginContext, url: str) -> Storage:
    """The built-in backend for ``url`` (not opened yet), with every switched-on plugin's
    migrations (``hotplex_register_migrations``), applied when it opens."""
    from hotplex.storage.sql import SqlStorage

    return SqlStorage(url, migrations=ctx.plugins.migrations())


def storage_records() -> list[StorageSpec]:
    """What core's ``hotplex_register_storage`` (trylast) returns."""
    return [StorageSpec(name="sqlalchemy", schemes=SCHEMES, factory=make_sql_storage)]


class _Unstored(HookSink):
    """The storage sink with ``storage.enabled: false``: nothing to store into."""

    async def handle(self, batch: Sequence[AgentEvent | AuditEvent]) -> None:
        return None


def make_storage_sink(ctx: PluginContext) -> HookSink:
    """The storage sink over the opened storage (service ``STORAGE``); also published as
    service ``STORAGE_SINK`` for the engine's ``committed()`` waits. When plugins register
    outbox consumers, the sink writes their rows and the outbox is published as ``OUTBOX``."""
    from hotplex.services import STORAGE
    from hotplex.storage.sink import STORAGE_SINK, StorageSink

    if not ctx.settings.storage.enabled:
        return _Unstored()
    existing = ctx.services.find(STORAGE_SINK)
    if existing is not None:
        return existing
    storage = ctx.services.get(STORAGE)
    consumers = outbox_filter(ctx)
    outbox = make_outbox(storage) if consumers else None
    if outbox is not None:
        ctx.services.set(OUTBOX, outbox)
    sink = StorageSink(storage, outbox=consumers, notify=outbox)
    ctx.services.set(STORAGE_SINK, sink)
    return sink


def outbox_filter(ctx: PluginContext) -> OutboxFilter:
    """Every switched-on plugin's outbox consumers (``hotplex_register_outbox``); a consumer
    name registered twice is a PluginError naming both outboxes."""
    merged: dict[str, tuple[str, ...]] = {}
    owner: dict[str, str] = {}
    for spec in ctx.plugins.outboxes().values():
        for name, types in spec.consumers(ctx).items():
            if name in merged:
                raise PluginError(
                    f"outbox consumer {name!r} is registered by {owner[name]!r} and {spec.name!r}"
                )
            merged[name] = tuple(types)
            owner[name] = spec.name
    return OutboxFilter(merged)


def make_outbox(storage: Storage) -> Outbox:
    """The outbox over ``storage``; ConfigError for a backend that has none."""
    from hotplex.storage.outbox import SqlOutbox
    from hotplex.storage.sql import SqlStorage

    if not isinstance(storage, SqlStorage):
        raise ConfigError(
            f"a plugin registered outbox consumers, but the storage backend {storage!r} "
            "has no outbox (the built-in SQL storage has)",
            path="storage.url",
        )
    return SqlOutbox(storage)


def storage_sink_spec(queue_size: int = 10_000) -> SinkSpec:
    """What core's ``hotplex_register_sinks`` returns for storage: blocking, never drops."""
    return SinkSpec(
        name="storage", factory=make_storage_sink, on_overflow="block", queue_size=queue_size
    )


async def prune_expired(storage: Storage, retention_days: int, now: float | None = None) -> int:
    """Delete what is older than ``retention_days`` (0: keep everything); rows deleted."""
    if retention_days <= 0:
        return 0
    cutoff = (time.time() if now is None else now) - retention_days * 86400.0
    return await storage.prune(cutoff)


async def _retention_loop(storage: Storage, retention_days: int, interval: float) -> None:
    while True:
        try:
            deleted = await prune_expired(storage, retention_days)
            if deleted:
                log.info("retention: deleted %d rows older than %d days", deleted, retention_days)
        except Exception:
            log.exception("retention pass failed")
        await asyncio.sleep(interval)


@asynccontextmanager
async def run_retention(
    ctx: PluginContext, interval: float = RETENTION_INTERVAL
) -> AsyncIterator[None]:
    """Start-up resource: prune by ``storage.retention_days`` now and every ``interval``."""
    from hotplex.services import STORAGE

    days = ctx.settings.storage.retention_days
    if days <= 0 or not ctx.settings.storage.enabled:
        yield
        return
    task = asyncio.create_task(
        _retention_loop(ctx.services.get(STORAGE), days, interval), name="storage-retention"
    )
    try:
        yield
    finally:
        await cancel_and_wait(task)


def retention_resource() -> ResourceSpec:
    """The retention task as a ``hotplex_startup`` resource (after the storage resource)."""
    return ResourceSpec("storage-retention", run_retention)
