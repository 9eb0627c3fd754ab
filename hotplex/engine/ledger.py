"""The turn ledger: everything about "accepted means stored" in one place.

- A turn the engine accepts is stored before it is queued (:meth:`TurnLedger.accept`, one
  transaction with the inbound message it answers), so a restart runs it.
- Nothing of a turn is published before its record is on disk (:meth:`until_synced`; the
  prompt may already be with the agent, see docs/storage.md, "Turn start").
- A turn's ``done`` reaches nobody before its events are committed and the turn is stored
  as finished together with its session (:meth:`end`), so a client that saw ``done`` never
  sees the turn again.

Without storage (``store`` None) every step is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from hotplex.engine.persistence import record_of
from hotplex.engine.session import Session, Turn
from hotplex.errors import HotplexError
from hotplex.events import AgentEvent
from hotplex.interfaces import Storage
from hotplex.types import IncomingMessage

__all__ = ["DURABLE_TIMEOUT", "Durable", "TurnLedger"]

log = logging.getLogger("hotplex.engine.engine")

#: Awaited before a turn's ``done`` reaches anyone: returns once its events are committed.
Durable = Callable[[AgentEvent], Awaitable[None]]
DURABLE_TIMEOUT = 30.0


class TurnLedger:
    def __init__(self, store: Storage | None, durable: Durable | None = None) -> None:
        self.store = store
        self._durable = durable

    async def accept(self, session: Session, turn: Turn, inbound: IncomingMessage | None) -> None:
        """Store an accepted turn, as started at once when the worker takes it next (an
        idle session), so no second commit stands between the prompt and the agent."""
        store = self.store
        if store is None:
            return
        starts_now = not session.busy
        await store.accept_turn(
            session.session_id,
            turn.turn_id,
            turn.prompt,
            request_id=turn.request_id,
            user=turn.user,
            inbound=inbound,
            started=starts_now,
        )
        turn.stored_started = starts_now
        turn.synced = store.synced()

    async def start(self, turn: Turn) -> None:
        """The worker took a queued turn."""
        if self.store is not None and not turn.stored_started:
            await self.store.start_turn(turn.turn_id)

    async def until_synced(self, session: Session, turn: Turn) -> None:
        """Wait (once per turn) until the turn's record is on disk."""
        synced, turn.synced = turn.synced, None
        try:
            if synced is not None:
                async with asyncio.timeout(DURABLE_TIMEOUT):
                    await synced
        except (TimeoutError, HotplexError) as exc:
            log.error("session %s: turn %s not synced: %r", session.key, turn.turn_id, exc)

    async def end(self, session: Session, done: AgentEvent) -> None:
        """Before a turn's ``done`` reaches anyone: its events committed (``durable``) and
        the turn stored as finished, with the session as it is after the turn."""
        try:
            if self._durable is not None:
                async with asyncio.timeout(DURABLE_TIMEOUT):
                    await self._durable(done)
            store, status = self.store, str(done.data["status"])
            if store is not None and done.turn_id:
                turn = session.current
                if turn is not None:
                    await store.end_turn(done.turn_id, status, record_of(session, ending=True))
                    turn.stored_ended = True
                else:
                    await store.end_turn(done.turn_id, status)
        except (TimeoutError, HotplexError) as exc:
            log.error(
                "session %s: turn %s not confirmed stored: %r", session.key, done.turn_id, exc
            )

    async def abandon(self, turn_id: str) -> None:
        """A stored turn that will never run (its session is gone)."""
        if self.store is not None:
            await self.store.end_turn(turn_id, "interrupted")

    async def forget(self, session_id: str) -> bool:
        """Delete a forgotten session's record, events and turns (False: none stored)."""
        if self.store is None:
            return False
        return await self.store.forget_session(session_id)

    async def save(self, session: Session) -> None:
        if self.store is not None:
            await self.store.save_session(record_of(session))

    async def turn_over(self, session: Session, turn: Turn) -> None:
        """After a turn: store the session unless it was stored with the turn's end; a
        failure is logged (the turn itself is over)."""
        if turn.stored_ended:
            return
        try:
            await self.save(session)
        except Exception:
            log.exception("session %s: storing the session failed", session.key)
