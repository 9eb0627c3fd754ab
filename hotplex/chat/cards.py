"""Core's start-up resource for approvals in chat, and how it finds a conversation's adapter.

:func:`run_chat_approvals` (after the engine) builds :class:`~hotplex.chat.approvals.
ChatApprovals` over the engine's approvals, sets the ``CHAT_APPROVALS`` service and closes
the cards an earlier run left open. :class:`AdapterOperations` finds the operations of the
running chat adapter that owns an address's platform (``ChatAdapter.platform``, else its
name), waiting, bounded, while the runtime has not started its adapters yet.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

from hotplex.chat.approvals import CHAT_APPROVALS, ChatApprovals
from hotplex.context import PluginContext
from hotplex.interfaces import ChatAdapter, MessageOperations

__all__ = ["AdapterOperations", "run_chat_approvals"]


class AdapterOperations:
    """``await lookup(address)``: the operations of the adapter owning the address's
    platform, or None. While ``started()`` is False and ``expected()`` names adapters, it
    waits for them (at most ``wait`` seconds)."""

    def __init__(
        self,
        adapters: Callable[[], Mapping[str, ChatAdapter]],
        *,
        started: Callable[[], bool],
        expected: Callable[[], bool],
        wait: float = 10.0,
        poll: float = 0.05,
    ) -> None:
        self._adapters = adapters
        self._started = started
        self._expected = expected
        self._wait = wait
        self._poll = poll

    def find(self, address: str) -> MessageOperations | None:
        platform = address.partition(":")[0]
        for name, adapter in self._adapters().items():
            if (adapter.platform or name) == platform:
                return adapter.operations
        return None

    async def __call__(self, address: str) -> MessageOperations | None:
        deadline = time.monotonic() + self._wait
        while True:
            found = self.find(address)
            if found is not None or self._started() or not self._expected():
                return found
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(self._poll)


@asynccontextmanager
async def run_chat_approvals(ctx: PluginContext) -> AsyncIterator[None]:
    """Approvals in chat for the runtime's engine (nothing without one)."""
    from hotplex.engine import ENGINE
    from hotplex.runtime import RUNTIME
    from hotplex.services import STORAGE

    engine = ctx.services.find(ENGINE)
    runtime = ctx.services.find(RUNTIME)
    if engine is None or runtime is None:
        yield
        return
    lookup = AdapterOperations(
        lambda: runtime.adapters,
        started=runtime.started.is_set,
        expected=lambda: any(runtime.enabled(n) for n in ctx.plugins.chat_adapters()),
    )
    cards = ChatApprovals(
        engine.approvals,
        operations_for=lookup,
        audit=runtime.emit,
        storage=ctx.services.find(STORAGE),
    )
    await cards.start()
    ctx.services.set(CHAT_APPROVALS, cards)
    try:
        yield
    finally:
        ctx.services.remove(CHAT_APPROVALS)
        await cards.aclose()
