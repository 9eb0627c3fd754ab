"""The ``execute`` frames of one WebSocket connection, each in its own task.

An execute passes the inbound middleware chain before its turn starts, and a middleware may
wait for a long time: a WAF-asked prompt waits for a person. The read loop must not wait
with it, or nothing else on the connection (another session's prompt, the very
``permission_response`` that decides it) would be read. So each execute runs in a task,
and the read loop waits for that task only until it is accepted or refused (frames are
still handled in the order they came, for the ordinary case) or until it *parks*: it
waits for a person, or for an earlier execute of the same session that parked (a session's
prompts reach the engine in the order they were sent). A parked execute goes on by itself;
at most ``limit`` executes are in flight per connection, and one more is refused with the
retryable error ``too_many_executes``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from hotplex.gateway.frames import GatewayError

__all__ = ["Executes", "Park"]

#: Called by an execute that starts to wait for something that may take long.
Park = Callable[[], None]
Work = Callable[[Park], Coroutine[Any, Any, None]]
Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]


class Executes:
    def __init__(self, limit: int, spawn: Spawn) -> None:
        self.limit = limit
        self._spawn = spawn
        self._in_flight: set[asyncio.Task[None]] = set()
        self._last: dict[str, asyncio.Task[None]] = {}  # per client session id

    def __len__(self) -> int:
        return len(self._in_flight)

    async def start(self, client_id: str, work: Work) -> None:
        """Run ``work(park)`` in its own task; return when it ends or parks."""
        if len(self._in_flight) >= self.limit:
            raise GatewayError(
                "too_many_executes",
                f"{len(self._in_flight)} prompts of this connection are still waiting (for an "
                "approval or an earlier prompt); wait for one to start or be refused.",
                status=429,
                retryable=True,
            )
        parked = asyncio.Event()
        before = self._last.get(client_id)

        async def run() -> None:
            if before is not None and not before.done():
                parked.set()
                await asyncio.wait([before])
            await work(parked.set)

        task = self._spawn(run(), f"ws-execute:{client_id}")
        self._in_flight.add(task)
        self._last[client_id] = task
        task.add_done_callback(lambda done: self._forget(client_id, done))
        waiter = asyncio.create_task(parked.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()

    def _forget(self, client_id: str, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if self._last.get(client_id) is task:
            del self._last[client_id]
