"""Durable inbound messages: recorded as received before anything else happens, marked
done once their turn is accepted, and replayed after a crash.

The ``inbound`` middleware (order 100, first in the chain) inserts each message into
storage if absent, on the platform's event id and on its message key; a duplicate (a retry,
a second delivery) stops there, so it starts no second turn. The engine stores the
message's turn as queued and marks the message done in one transaction
(``execute(..., inbound=message)``): from then on the turn table carries it (a restart runs
a queued turn and reports a started one as interrupted), and a crash can never leave it in
both tables, which would run it twice. A message that started no turn (refused by a
middleware) is marked done when the chain returns.

Messages left ``received`` by a crash are replayed once at start-up, through the handler
their platform registered in ``Runtime.replayers`` (the gateway registers ``web``).

A message with neither an event id nor a message key (the gateway's prompts) cannot be
de-duplicated, so recording it first would only cost a commit on the way to the agent: it
is stored with its turn instead (inserted as done in the turn's transaction), or as done
when the chain stops it. Nothing acknowledges such a message before that commit (the
client's first sign is the turn's first event), so a crash before it loses nothing that
was accepted; see docs/storage.md, "Turn start".
"""

from __future__ import annotations

from hotplex.context import PluginContext
from hotplex.interfaces import Middleware, MiddlewareContext, Next
from hotplex.services import STORAGE

__all__ = ["InboundLog"]


class InboundLog(Middleware):
    def __init__(self, ctx: PluginContext) -> None:
        self._ctx = ctx

    async def process(self, ctx: MiddlewareContext, call_next: Next) -> None:
        storage = self._ctx.services.find(STORAGE)
        if storage is None:
            await call_next(ctx)
            return
        message = ctx.message
        identified = message.event_id is not None or message.message_key is not None
        if identified and not ctx.facts.get("replay") and not await storage.record_inbound(message):
            ctx.facts["duplicate"] = True
            return
        try:
            await call_next(ctx)
        finally:
            if "turn" not in ctx.facts:  # a started turn marked it done with itself
                await storage.finish_inbound(ctx.message)
