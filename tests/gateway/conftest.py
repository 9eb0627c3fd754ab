"""Fixtures of the gateway tests (the kit is in gateway_kit.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from gateway_kit import WAIT, HarnessFactory, make_harness


@pytest.fixture
def gateway(tmp_path: Path) -> HarnessFactory:
    """``async with gateway({"client_queue": 8}) as h:`` a running app (server.* overrides)."""
    return make_harness(tmp_path)


@pytest.fixture
def wait_for() -> Callable[..., Awaitable[None]]:
    """``await wait_for(lambda: cond)``: poll a condition, bounded by a timeout."""

    async def wait(condition: Callable[[], bool], timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.01)

    return wait
