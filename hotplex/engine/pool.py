"""The engine's live agent processes: one per session, started (or adopted from the
spares) on the session's first turn, resumed after a stop, capped at ``max_sessions``
(docs/engine.md, "Limits and timers")."""

from __future__ import annotations

from hotplex.config import Settings
from hotplex.engine.gate import ToolGate
from hotplex.engine.launcher import Launcher
from hotplex.engine.ledger import TurnLedger
from hotplex.engine.publisher import Publisher
from hotplex.engine.session import Session
from hotplex.engine.slots import Slots
from hotplex.engine.spares import Spares
from hotplex.events import AuditEvent, agent_event
from hotplex.interfaces import AgentProcess

__all__ = ["Pool", "apply_override"]


class Pool:
    def __init__(
        self,
        settings: Settings,
        *,
        launcher: Launcher,
        slots: Slots,
        spares: Spares,
        gate: ToolGate,
        ledger: TurnLedger,
        publisher: Publisher,
    ) -> None:
        self._kill_grace = settings.engine.kill_grace
        self._launcher = launcher
        self._slots = slots
        self._spares = spares
        self._gate = gate
        self._ledger = ledger
        self._publisher = publisher

    async def reserve(self) -> None:
        """A slot for one more process, stopping the least recently used idle session's
        agent when the pool is full (audited ``session.evicted``)."""
        victim = self._slots.reserve()
        if victim is None:
            return
        await self.stop(victim, "ended")
        await self._publisher.audit(
            AuditEvent(
                "session.evicted", {"key": victim.key}, session_id=victim.session_id, actor="system"
            )
        )

    async def ensure(self, session: Session) -> AgentProcess:
        """The session's live agent: a spare for a new session, else started or resumed."""
        async with session.spawn_lock:
            if session.process is not None and session.process.alive:
                return session.process
            if session.process is not None:  # it died: clean up before respawning
                await self.stop(session, None)
            adopted = None if session.started_once else self._spares.take(session)
            if adopted is not None:
                session.process = adopted
                state = "started"
            else:
                await self.reserve()
                try:
                    spec = self._launcher.start_spec(
                        session.session_id,
                        session.provider_session_id,
                        session.work_dir,
                        resume=session.started_once,
                    )
                    session.process = await self._launcher.start(
                        spec, self._gate.for_session(session)
                    )
                except BaseException:
                    self._slots.release()
                    raise
                state = "resumed" if session.started_once else "started"
            session.started_once = True
            await self._ledger.save(session)  # the pid first: a restart must be able to reap it
            for name, value in session.overrides.items():
                await apply_override(session.process, name, value)
            await self._publisher.publish(session, agent_event("session", state=state))
            return session.process

    async def stop(self, session: Session, state: str | None) -> None:
        """Stop the session's agent (its process group) and free its slot; ``state`` is
        the ``session`` event to publish (None: none)."""
        process, session.process = session.process, None
        if process is None:
            return
        try:
            await process.close(self._kill_grace)
        finally:
            self._slots.release()
        await self._ledger.save(session)
        if state is not None:
            await self._publisher.publish(session, agent_event("session", state=state))


async def apply_override(process: AgentProcess, name: str, value: str | None) -> None:
    if name == "model":
        await process.control("set_model", model=value)
    else:
        await process.control("set_permission_mode", mode=value)
