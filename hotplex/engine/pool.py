"""The engine's agent processes: how one is started (command, environment, limits), the
``max_sessions`` pool with LRU eviction of idle sessions, and stopping (docs/engine.md,
"Limits and timers")."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hotplex.config import Settings
from hotplex.engine.approvals import Approvals
from hotplex.engine.environment import agent_environment
from hotplex.engine.limits import AgentLimits, Confinement, LimitBackend
from hotplex.engine.session import Session
from hotplex.engine.spares import Spares
from hotplex.engine.survivors import TAG, agent_tag
from hotplex.engine.workdirs import WorkDirs
from hotplex.errors import PoolExhaustedError
from hotplex.events import AgentEvent, AuditEvent, agent_event
from hotplex.interfaces import AgentProcess, Provider
from hotplex.types import AgentStartSpec, ToolDecision, ToolRequest

__all__ = ["ProcessPool", "apply_override"]


class ProcessPool:
    """Part of :class:`~hotplex.engine.engine.Engine`: its live agent processes."""

    if TYPE_CHECKING:
        settings: Settings
        provider: Provider
        approvals: Approvals
        workdirs: WorkDirs
        spares: Spares
        _sessions: dict[str, Session]
        _live: int
        _pool_lock: asyncio.Lock
        _secrets: frozenset[str]
        _limit_backend: LimitBackend | None

        def gate_for(
            self, session: Session
        ) -> Callable[[ToolRequest], Awaitable[ToolDecision]]: ...

        async def _publish(self, session: Session, event: AgentEvent) -> AgentEvent: ...

        async def _emit_audit(self, event: AuditEvent) -> None: ...

        async def _save(self, session: Session) -> None: ...

    def environment(self) -> dict[str, str]:
        return agent_environment(
            os.environ,
            extra=self.settings.provider.env,
            secrets=self._secrets,
            overrides={TAG: agent_tag(self.settings.engine.data_dir)},  # see survivors.py
        )

    def start_spec(
        self, session_id: str, provider_session_id: str, work_dir: Path, resume: bool
    ) -> AgentStartSpec:
        return AgentStartSpec(
            session_id=session_id,
            provider_session_id=provider_session_id,
            resume=resume,
            work_dir=work_dir,
            state_dir=self.workdirs.state_dir(provider_session_id),
            env=self.environment(),
            confinement=self._confinement(provider_session_id),
        )

    def _confinement(self, provider_session_id: str) -> Confinement | None:
        if self._limit_backend is None:
            return None
        limits = self.settings.engine.limits
        mib = 1024 * 1024
        agent_limits = AgentLimits(
            memory_bytes=None if limits.memory_mb is None else limits.memory_mb * mib,
            max_pids=limits.max_pids,
            max_open_files=limits.max_open_files,
        )
        return Confinement(self._limit_backend, agent_limits, f"agent-{provider_session_id}")

    @property
    def limit_backend(self) -> str:
        """The confinement in use: cgroup2, cgroup1, rlimit, or off."""
        return self._limit_backend.name if self._limit_backend is not None else "off"

    async def reserve_slot(self, *, evict: bool = True) -> None:
        """Count one more live process, evicting the least recently used idle session when
        the pool is full; PoolExhaustedError when every live session is busy."""
        async with self._pool_lock:
            if self._live < self.settings.engine.max_sessions:
                self._live += 1
                return
            victim = self._lru_idle() if evict else None
            if victim is None:
                raise PoolExhaustedError(
                    f"All {self.settings.engine.max_sessions} agent sessions are busy; "
                    "try again when one finishes."
                )
            self._live += 1  # the victim's slot is handed over below
        await self._stop_process(victim, "ended")
        await self._emit_audit(
            AuditEvent(
                "session.evicted", {"key": victim.key}, session_id=victim.session_id, actor="system"
            )
        )

    def release_slot(self) -> None:
        self._live -= 1

    def _lru_idle(self) -> Session | None:
        idle = [
            s
            for s in self._sessions.values()
            if s.process is not None
            and s.process.alive
            and not s.busy
            and not self.approvals.pending(s.session_id)
        ]
        return min(idle, key=lambda s: s.last_active, default=None)

    async def _ensure_process(self, session: Session) -> AgentProcess:
        async with session.spawn_lock:
            if session.process is not None and session.process.alive:
                return session.process
            if session.process is not None:  # it died: clean up before respawning
                await self._stop_process(session, None)
            adopted = None if session.started_once else self.spares.take(session)
            if adopted is not None:
                session.process = adopted
                state = "started"
            else:
                await self.reserve_slot()
                try:
                    spec = self.start_spec(
                        session.session_id,
                        session.provider_session_id,
                        session.work_dir,
                        resume=session.started_once,
                    )
                    session.process = await self.provider.start(spec, self.gate_for(session))
                except BaseException:
                    self.release_slot()
                    raise
                state = "resumed" if session.started_once else "started"
            session.started_once = True
            await self._save(session)  # the pid first: a restart must be able to reap it
            for name, value in session.overrides.items():
                await apply_override(session.process, name, value)
            await self._publish(session, agent_event("session", state=state))
            return session.process

    async def _stop_process(self, session: Session, state: str | None) -> None:
        process, session.process = session.process, None
        if process is None:
            return
        try:
            await process.close(self.settings.engine.kill_grace)
        finally:
            self.release_slot()
        await self._save(session)
        if state is not None:
            await self._publish(session, agent_event("session", state=state))


async def apply_override(process: AgentProcess, name: str, value: str | None) -> None:
    if name == "model":
        await process.control("set_model", model=value)
    else:
        await process.control("set_permission_mode", mode=value)
