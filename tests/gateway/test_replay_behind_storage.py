"""A subscriber that arrives while storage lags seconds behind the engine: its replay waits
for the storage sink to commit up to the mark, so nothing between what storage holds and
the live stream is skipped; when the sink does not catch up in time the client is told."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from gateway_kit import WAIT, Harness, HarnessFactory, frames_until, is_done, is_type

from hotplex.events import AgentEvent, AuditEvent, agent_event
from hotplex.gateway import follow
from hotplex.storage.sink import STORAGE_SINK


def stall_storage(h: Harness, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Storage writes wait until the returned event is set."""
    release = asyncio.Event()
    write = h.storage.append_batch

    async def stalled(events: Sequence[AgentEvent], audit: Sequence[AuditEvent]) -> None:
        await release.wait()
        await write(events, audit)

    monkeypatch.setattr(h.storage, "append_batch", stalled)
    return release


async def start_long_turn(h: Harness) -> Any:
    h.provider.delay = 0.01
    h.provider.queue_turn(*(agent_event("text", text=f"t{i}") for i in range(30)))
    a = await h.ws()
    await a.send_json({"type": "execute", "session_id": "s1", "prompt": "long"})
    await frames_until(a, lambda f: f["seq"] >= 10)
    return a


async def test_a_replay_waits_for_the_sink_and_has_no_gap(
    gateway: HarnessFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(follow, "CATCH_UP", 0.01)  # the old polling window, made tiny
    async with gateway() as h:
        release = stall_storage(h, monkeypatch)
        await start_long_turn(h)
        sink = h.runtime.ctx.services.get(STORAGE_SINK)
        sid = h.engine_id("alice", "s1")
        b = await h.ws()
        await b.send_json({"type": "subscribe", "session_id": "s1"})
        async with asyncio.timeout(WAIT):
            while not sink._waiters.get(sid):  # the replay waits on the sink
                await asyncio.sleep(0.005)
        release.set()
        frames = await frames_until(b, is_done())
    assert [f["seq"] for f in frames] == list(range(1, frames[-1]["seq"] + 1))
    assert [f["data"]["text"] for f in frames if f["type"] == "text"] == [
        f"t{i}" for i in range(30)
    ]


async def test_a_replay_that_cannot_be_had_is_an_error_not_a_gap(
    gateway: HarnessFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(follow, "COMMIT_WAIT", 0.2)
    async with gateway() as h:
        release = stall_storage(h, monkeypatch)
        await start_long_turn(h)
        b = await h.ws()
        await b.send_json({"type": "subscribe", "session_id": "s1", "request_id": "sub"})
        (error,) = await frames_until(b, is_type("error"))
        assert error["data"]["code"] == "storage_unavailable" and error["data"]["retryable"]
        release.set()
