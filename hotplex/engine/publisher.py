"""Where every event of a session goes: stamped into the session's sequence, to the sinks,
past the turn ledger, then to the running turn and the live subscribers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from hotplex.engine.ledger import TurnLedger
from hotplex.engine.session import Session
from hotplex.events import AgentEvent, AuditEvent

__all__ = ["Emit", "Publisher"]

Emit = Callable[[AgentEvent | AuditEvent], Awaitable[None]]


class Publisher:
    def __init__(self, ledger: TurnLedger, emit: Emit | None = None) -> None:
        self._ledger = ledger
        self._emit = emit

    async def publish(self, session: Session, event: AgentEvent) -> AgentEvent:
        """Place an event in the session's one ordered stream. The turn's worker and its
        tool gate publish concurrently; the session's lock keeps the wait for the turn's
        record, the stamp, the sinks and the delivery of one event together, so every
        client (and every sink) gets the events in ``seq`` order."""
        async with session.publish_lock:
            turn = session.current
            if turn is not None and turn.synced is not None:
                await self._ledger.until_synced(session, turn)
            stamped = session.stamp(event)
            if self._emit is not None:
                await self._emit(stamped)
            if stamped.type == "done":
                await self._ledger.end(session, stamped)
            session.deliver(stamped)
            return stamped

    async def audit(self, event: AuditEvent) -> None:
        if self._emit is not None:
            await self._emit(event)

    async def post(
        self, session: Session, event: AgentEvent, *, request_id: str | None
    ) -> AgentEvent:
        """Publish an event that belongs to no turn (``turn_id`` empty), e.g. a WAF-asked
        prompt's ``permission_request``: to the sinks and the subscribers, in the stream's
        order."""
        async with session.publish_lock:
            session.seq += 1
            stamped = event.stamped(
                session_id=session.session_id, turn_id="", seq=session.seq, request_id=request_id
            )
            if self._emit is not None:
                await self._emit(stamped)
            session.deliver(stamped)
            return stamped
