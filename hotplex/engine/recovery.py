"""What a start does with a crashed predecessor's stored state (docs/engine.md,
"Persistence and restarts"): its agents are reaped, its sessions restored (same ids,
provider session ids, work directories and seq counters), a turn that was running is
reported to its conversation as interrupted, and queued turns run again."""

from __future__ import annotations

import asyncio
import logging

from hotplex.engine.launcher import Launcher
from hotplex.engine.ledger import TurnLedger
from hotplex.engine.persistence import reap_orphans, restore
from hotplex.engine.publisher import Publisher
from hotplex.engine.session import Session, Turn
from hotplex.engine.turns import TurnRunner
from hotplex.events import agent_event

__all__ = ["Recovery"]

log = logging.getLogger("hotplex.engine.engine")


class Recovery:
    def __init__(
        self,
        sessions: dict[str, Session],
        *,
        ledger: TurnLedger,
        publisher: Publisher,
        runner: TurnRunner,
        launcher: Launcher,
        recovered: list[tuple[Session, Turn]],
    ) -> None:
        self._sessions = sessions
        self._ledger = ledger
        self._publisher = publisher
        self._runner = runner
        self._launcher = launcher
        self._recovered = recovered

    async def run(self) -> None:
        """Reap a crashed predecessor's agents, restore sessions, report interrupted turns
        and requeue the queued ones; nothing without storage."""
        store = self._ledger.store
        if store is None:
            return
        records = await store.load_sessions()
        killed = await asyncio.to_thread(reap_orphans, records, self._launcher.backend)
        for record in records:
            self._sessions[record.session_id] = await restore(store, record)
        pending = await store.pending_turns()
        for queued in pending:
            session = self._sessions.get(queued.session_id)
            if session is None:
                await self._ledger.abandon(queued.turn_id)
                continue
            turn = Turn(
                queued.prompt,
                request_id=queued.request_id,
                user=queued.user,
                turn_id=queued.turn_id,
            )
            self._recovered.append((session, turn))
            if queued.state == "started":
                await self._report_interrupted(session, turn)
                await self._ledger.save(session)
            else:
                session.queue.put_nowait(turn)
                self._runner.ensure_worker(session)
        if records:
            log.info(
                "restored %d sessions (%d orphan agents killed, %d turns pending)",
                len(records),
                killed,
                len(pending),
            )

    async def _report_interrupted(self, session: Session, turn: Turn) -> None:
        session.current = turn
        try:
            await self._publisher.publish(
                session,
                agent_event(
                    "error",
                    code="interrupted_by_restart",
                    retryable=True,
                    message="HotPlex restarted while this turn was running; send the message "
                    "again to continue.",
                ),
            )
            await self._publisher.publish(
                session, agent_event("done", status="interrupted", duration_ms=0)
            )
        finally:
            session.current = None
