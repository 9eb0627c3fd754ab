"""What the cron tests share: a running HotPlex with the cron plugin, and waiting helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from hotplex_cron import plugin
from hotplex_cron.keys import CRON
from hotplex_cron.service import CronService

from hotplex.testing.running import RunningHotPlex

Start = Callable[..., Awaitable[RunningHotPlex]]


def cron_config(**cron: Any) -> dict[str, Any]:
    return {
        "plugins": {
            "cron": {"min_interval": "1s", "lease_ttl": "3s", **cron},
        }
    }


async def start_cron(
    running_hotplex: Start, *, extra: dict[str, Any] | None = None, **cron: Any
) -> tuple[RunningHotPlex, CronService]:
    """A running HotPlex with cron (``cron``: keys of ``plugins.cron``; ``extra``: other
    top-level sections)."""
    config = {**cron_config(**cron), **(extra or {})}
    hp = await running_hotplex(config=config, plugins=[("cron", plugin)])
    return hp, hp.runtime.ctx.services.get(CRON)


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll ``condition`` (bounded) until it holds."""
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.05)
