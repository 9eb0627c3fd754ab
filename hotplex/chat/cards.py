"""Core's start-up resource for approvals in chat.

:func:`run_chat_approvals` (after the engine) builds :class:`~hotplex.chat.approvals.
ChatApprovals` over the engine's approvals and the delivery router (service ``DELIVERY``),
sets the ``CHAT_APPROVALS`` service and closes the cards an earlier run left open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from hotplex.chat.approvals import CHAT_APPROVALS, ChatApprovals
from hotplex.context import PluginContext

__all__ = ["run_chat_approvals"]


@asynccontextmanager
async def run_chat_approvals(ctx: PluginContext) -> AsyncIterator[None]:
    """Approvals in chat for the runtime's engine (nothing without one or a router)."""
    from hotplex.chat.router import DELIVERY
    from hotplex.engine import ENGINE
    from hotplex.runtime import RUNTIME
    from hotplex.services import STORAGE

    engine = ctx.services.find(ENGINE)
    router = ctx.services.find(DELIVERY)
    if engine is None or router is None:
        yield
        return
    runtime = ctx.services.find(RUNTIME)
    cards = ChatApprovals(
        engine.approvals,
        conversations=router,
        audit=runtime.emit if runtime is not None else None,
        storage=ctx.services.find(STORAGE),
    )
    await cards.start()
    ctx.services.set(CHAT_APPROVALS, cards)
    try:
        yield
    finally:
        ctx.services.remove(CHAT_APPROVALS)
        await cards.aclose()
