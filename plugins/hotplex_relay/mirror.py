"""Mirroring bound conversations (docs/relay.md#bindings).

Two hooks core already has, nothing added to it:

- the inbound middleware ``relay-mirror`` (order 450, after dedup, access and the WAF)
  sees every message of every platform, the web chat's included; a person's message that
  got through (it started a turn or was a command's) in a bound conversation is posted to
  each partner as ``**who** in <address>: text``;
- the sink ``relay-mirror`` sees every turn's events off the hot path; when a turn of a
  session whose conversation is bound ends, its final answer (the ``text`` events, not the
  streamed drafts) is posted to each partner as ``**agent** in <address>: text``.

So edits (the streamed drafts) and approval cards are never mirrored, and a mirrored
message is written by the bot, which no adapter delivers back as a person's message: a
mirror cannot loop.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hotplex import AgentEvent, AuditEvent
from hotplex.context import PluginContext
from hotplex.interfaces import HookSink, Middleware, MiddlewareContext, Next

if TYPE_CHECKING:
    from hotplex_relay.service import RelayService

__all__ = ["MirrorMiddleware", "MirrorSink"]

log = logging.getLogger(__name__)
_MAX_TURNS = 1000  # turns whose text is gathered at once


class MirrorMiddleware(Middleware):
    def __init__(self, ctx: PluginContext) -> None:
        self._ctx = ctx

    async def process(self, ctx: MiddlewareContext, call_next: Next) -> None:
        await call_next(ctx)
        if ctx.facts.get("replay") or not (ctx.facts.get("turn") or ctx.facts.get("answered")):
            return
        from hotplex_relay.service import RELAY

        service = self._ctx.services.find(RELAY)
        message = ctx.message
        if service is None or not message.text.strip():
            return
        if not service.bindings.partners(message.address):
            return
        who = f"**{message.display_name or message.user}**"
        # off the message's path: the turn does not wait for it
        service.spawn(service.mirror(message.address, who, message.text), "relay-mirror")


class MirrorSink(HookSink):
    def __init__(self, ctx: PluginContext) -> None:
        self._ctx = ctx
        #: turn id -> the answer's blocks so far, for turns of bound conversations only
        self._texts: OrderedDict[str, list[str]] = OrderedDict()

    async def handle(self, batch: Sequence[AgentEvent | AuditEvent]) -> None:
        for item in batch:
            if not isinstance(item, AgentEvent) or item.type not in ("text", "done"):
                continue
            if item.type == "text":
                if item.turn_id in self._texts or self._partners(item.session_id)[1] is not None:
                    self._texts.setdefault(item.turn_id, []).append(str(item.data["text"]))
                    while len(self._texts) > _MAX_TURNS:  # a turn whose end never came
                        self._texts.popitem(last=False)
                continue
            texts = self._texts.pop(item.turn_id, [])
            address, service = self._partners(item.session_id) if texts else ("", None)
            if service is not None:
                await service.mirror(address, "**agent**", "\n\n".join(texts))

    def _partners(self, session_id: str) -> tuple[str, RelayService | None]:
        """The session's conversation and the relay, when that conversation is bound."""
        from hotplex.engine import ENGINE
        from hotplex_relay.service import RELAY

        service, engine = self._ctx.services.find(RELAY), self._ctx.services.find(ENGINE)
        session = engine.get(session_id) if engine is not None else None
        if service is None or session is None or not session.address:
            return "", None
        bound = service.bindings.partners(session.address)
        return (session.address, service) if bound else ("", None)
