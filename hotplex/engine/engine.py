"""The engine: a pool of hot agent processes, one per session, and the turns run on them.

``execute(key, prompt)`` returns a :class:`~hotplex.engine.session.Turn` at once; the
session's worker runs turns one at a time (``busy_policy`` decides what a message arriving
during a turn does). Each turn runs under a watchdog (``turn_idle_timeout``, paused while a
permission is pending, and ``turn_max_duration``) that interrupts, then kills. Live
processes are capped at ``max_sessions`` (idle ones evicted LRU), stopped after
``idle_timeout``, and resumed with the same provider session id on the next message.

This module holds the engine's sessions and their lifecycle; its parts live beside it:
:mod:`~hotplex.engine.turns` (the workers and their turns), :mod:`~hotplex.engine.pool`
(agent processes and the pool) and :mod:`~hotplex.engine.gate` (the tool gate).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from hotplex.address import session_id_for
from hotplex.agent_process import use_pidfd_child_watcher
from hotplex.aio import cancel_and_wait
from hotplex.config import Settings, UnattendedPolicy
from hotplex.engine.approvals import ADMIN, Approvals
from hotplex.engine.gate import ToolGate
from hotplex.engine.launcher import Launcher
from hotplex.engine.ledger import Durable, TurnLedger
from hotplex.engine.policy import PolicyChain, SessionGrants, ToolPolicy
from hotplex.engine.pool import Pool, apply_override
from hotplex.engine.publisher import Emit, Publisher
from hotplex.engine.recovery import Recovery
from hotplex.engine.session import Session, SessionInfo, Subscription, Turn
from hotplex.engine.slots import Slots
from hotplex.engine.spares import Spares
from hotplex.engine.survivors import sweep_survivors
from hotplex.engine.turns import TurnRunner
from hotplex.engine.workdirs import WorkDirs
from hotplex.errors import EngineError, HotplexError, SessionBusyError, SessionNotFoundError
from hotplex.events import AgentEvent, AuditEvent, agent_event
from hotplex.interfaces import Provider, Storage
from hotplex.interfaces import ToolGate as Gate
from hotplex.types import IncomingMessage

__all__ = ["Engine"]

log = logging.getLogger(__name__)


class Engine:
    """Composes its parts, each built here with what it needs: the
    :class:`~hotplex.engine.ledger.TurnLedger` (accepted means stored), the
    :class:`~hotplex.engine.publisher.Publisher` (every event's way out), the
    :class:`~hotplex.engine.gate.ToolGate` (policy chain, then a person), the
    :class:`~hotplex.engine.launcher.Launcher` and :class:`~hotplex.engine.slots.Slots`
    under the :class:`~hotplex.engine.pool.Pool` (live agents), the
    :class:`~hotplex.engine.spares.Spares` and the
    :class:`~hotplex.engine.turns.TurnRunner` (the sessions' workers)."""

    def __init__(
        self,
        settings: Settings,
        provider: Provider,
        *,
        emit: Emit | None = None,
        policies: Sequence[ToolPolicy] = (),
        store: Storage | None = None,
        durable: Durable | None = None,
    ) -> None:
        self.settings = settings
        self.provider = provider
        self._sessions: dict[str, Session] = {}
        #: turns a crashed predecessor left (queued: run again; started: reported as
        #: interrupted), for the chat bridge to render into their conversations
        self.recovered: list[tuple[Session, Turn]] = []
        self._unattended: dict[str, UnattendedPolicy | None] = {}
        self.ledger = TurnLedger(store, durable)
        self._publisher = publisher = Publisher(self.ledger, emit)
        self.approvals = Approvals(
            timeout=settings.security.approval_timeout, audit=publisher.audit, store=store
        )
        self.grants = SessionGrants()
        self.policy = PolicyChain([*policies, self.grants])
        self.gate = ToolGate(
            settings,
            approvals=self.approvals,
            policy=self.policy,
            grants=self.grants,
            unattended=self._unattended,
            publisher=publisher,
        )
        self.workdirs = WorkDirs(settings)
        self.launcher = Launcher(settings, provider, self.workdirs)
        self.slots = Slots(
            settings.engine.max_sessions, sessions=self._sessions, approvals=self.approvals
        )
        self.spares = Spares(
            settings.engine.prewarm, launcher=self.launcher, slots=self.slots, gate=self.gate
        )
        self.pool = Pool(
            settings,
            launcher=self.launcher,
            slots=self.slots,
            spares=self.spares,
            gate=self.gate,
            ledger=self.ledger,
            publisher=publisher,
        )
        self.runner = TurnRunner(
            settings, pool=self.pool, ledger=self.ledger, publisher=publisher, spares=self.spares
        )
        self.recovery = Recovery(
            self._sessions,
            ledger=self.ledger,
            publisher=publisher,
            runner=self.runner,
            launcher=self.launcher,
            recovered=self.recovered,
        )
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Engine:
        await self.launcher.detect_limits()
        use_pidfd_child_watcher()
        # agents a killed predecessor started but never recorded (see survivors.py)
        await asyncio.to_thread(sweep_survivors, self.settings.engine.data_dir)
        await self.recovery.run()
        self._reaper = asyncio.create_task(self._reap_idle(), name="engine-reaper")
        self.spares.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop every session's process group and the background tasks."""
        if self._closed:
            return
        self._closed = True
        await cancel_and_wait(self._reaper)
        await self.spares.aclose()
        sessions = list(self._sessions.values())
        # running turns end as interrupted, through their normal path (stored, done sent),
        # within the kill grace; what is still queued stays stored and runs after a restart
        running = [s.current for s in sessions if s.current is not None]
        # what waits for a person will not be there after the restart: expired, not denied
        await self.approvals.expire_pending("HotPlex stopped before anyone decided")
        for session in sessions:
            if session.current is not None:
                with contextlib.suppress(Exception):
                    await self._interrupt_turn(session, session.current)
        if running:
            await asyncio.wait(
                [asyncio.create_task(t.finished.wait()) for t in running],
                timeout=self.settings.engine.kill_grace + 1.0,
            )
        await cancel_and_wait(*(s.worker for s in sessions))
        await asyncio.gather(
            *(self.pool.stop(s, "ended") for s in sessions), return_exceptions=True
        )
        await self.provider.aclose()

    # -- sessions ----------------------------------------------------------------------

    def session_id(self, key: str) -> str:
        return session_id_for(key, self.settings.engine.namespace)

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def sessions(self) -> list[SessionInfo]:
        return [s.info() for s in self._sessions.values()]

    @property
    def live_processes(self) -> int:
        return self.slots.live

    @property
    def limit_backend(self) -> str:
        """The confinement in use: cgroup2, cgroup1, rlimit, or off."""
        return self.launcher.limit_backend

    def gate_for(self, session: Session) -> Gate:
        """The tool gate of a session's agent."""
        return self.gate.for_session(session)

    async def _session(
        self, key: str, address: str | None, owner: str | None, work_dir: Path | None = None
    ) -> Session:
        session_id = self.session_id(key)
        session = self._sessions.get(session_id)
        if session is not None:
            if work_dir is not None and session.work_dir != self.workdirs.explicit(work_dir):
                raise EngineError(
                    f"the session {key!r} works in {session.work_dir}, not in {work_dir}"
                )
            self.runner.ensure_worker(session)
            return session
        if work_dir is not None:
            work_dir = self.workdirs.explicit(work_dir)
        else:
            work_dir = await self.workdirs.for_session(session_id, address)
        session = Session(
            key=key,
            session_id=session_id,
            address=address,
            owner=owner,
            provider_session_id=str(uuid.uuid4()),
            work_dir=work_dir,
        )
        self._sessions[session_id] = session
        self.runner.ensure_worker(session)
        await self.ledger.save(session)
        await self._publisher.audit(
            AuditEvent(
                "session.created",
                {"key": key, "address": address},
                session_id=session_id,
                actor=owner,
            )
        )
        return session

    async def work_dir(
        self,
        key: str,
        *,
        address: str | None = None,
        user: str | None = None,
        work_dir: Path | None = None,
    ) -> Path:
        """The work directory of the session of ``key`` (the session is created if new):
        files put there before :meth:`execute` (a chat message's attachments) are where
        its agent works. ``work_dir`` as in :meth:`execute`."""
        if self._closed:
            raise HotplexError("the engine is closed")
        return (await self._session(key, address, user, work_dir)).work_dir

    async def execute(
        self,
        key: str,
        prompt: str,
        *,
        address: str | None = None,
        request_id: str | None = None,
        user: str | None = None,
        policy: UnattendedPolicy | None = None,
        inbound: IncomingMessage | None = None,
        images: Sequence[Path] = (),
        work_dir: Path | None = None,
    ) -> Turn:
        """Queue a prompt on the session of ``key`` and return its turn (iterate it for the
        events). ``policy`` makes the session unattended (cron, webhooks, relay);
        ``inbound`` is the stored message this turn answers (marked done with the turn);
        ``images`` are image files (in the work directory) shown to the agent with the
        prompt, where the provider can (see ``AgentProcess.turn``). ``work_dir`` (an
        existing directory) is where a new session's agent works instead of the
        ``projects`` match or its own directory (a cron job's); an existing session must
        already work there (``EngineError`` otherwise)."""
        if self._closed:
            raise HotplexError("the engine is closed")
        session = await self._session(key, address, user, work_dir)
        if policy is not None:
            self._unattended[session.session_id] = policy
        busy = self.settings.engine.busy_policy
        if session.busy and busy == "reject":
            raise SessionBusyError("A turn is already running; wait for it or stop it first.")
        turn = Turn(prompt, request_id=request_id, user=user, images=tuple(images))
        async with session.accept_lock:  # turns reach the queue in the order they are stored
            await self.ledger.accept(session, turn, inbound)  # a restart runs it
            if session.busy and busy == "interrupt" and session.current is not None:
                await self._interrupt_turn(session, session.current)
            session.queue.put_nowait(turn)
        return turn

    async def interrupt(self, session_id: str) -> bool:
        """Interrupt the running turn of a session; False when nothing was running."""
        session = self._sessions.get(session_id)
        if session is None or session.current is None:
            return False
        await self._interrupt_turn(session, session.current)
        return True

    async def _interrupt_turn(self, session: Session, turn: Turn) -> None:
        turn.interrupt_requested = True
        for request in self.approvals.pending(session.session_id):
            with contextlib.suppress(HotplexError):
                await self.approvals.decide(
                    request.permission_id, "deny", by=ADMIN, reason="interrupted"
                )
        if session.process is not None:
            await session.process.interrupt()

    async def reset(self, session_id: str) -> None:
        """Forget the conversation: stop the agent and start the next turn afresh."""
        session = self._sessions.get(session_id)
        if session is None:
            return
        if session.current is not None:
            await self._interrupt_turn(session, session.current)
        await self.pool.stop(session, None)
        session.provider_session_id = str(uuid.uuid4())
        session.started_once = False
        self.grants.clear(session_id)
        await self.ledger.save(session)
        await self._publisher.publish(session, agent_event("session", state="reset"))

    async def stop_session(self, session_id: str, *, by: str | None = None) -> bool:
        """Kill the session's process group (admin action); the next message resumes."""
        session = self._sessions.get(session_id)
        if session is None:
            return False
        if session.current is not None:
            await self._interrupt_turn(session, session.current)
        await self.pool.stop(session, "ended")
        await self._publisher.audit(
            AuditEvent("session.killed", {"key": session.key}, session_id=session_id, actor=by)
        )
        return True

    async def forget(self, session_id: str) -> bool:
        """End a session and forget it: its agent stopped, its record, events and turns
        deleted from storage, its agent state directory and, when HotPlex made it (under
        ``engine.work_dir``), its work directory removed; the key's next turn starts a new
        session. A cron job with a fresh session per run calls it after each run, so runs
        leave nothing behind. ``SessionBusyError`` while turns wait; a running turn is
        interrupted first. False when the session was neither live nor stored."""
        session = self._sessions.get(session_id)
        if session is None:
            return await self.ledger.forget(session_id)
        if not session.queue.empty():
            raise SessionBusyError("Turns are waiting in this session; stop it first.")
        running = session.current
        if running is not None:
            await self._interrupt_turn(session, running)
            await asyncio.wait_for(running.finished.wait(), self.settings.engine.kill_grace + 1.0)
        await cancel_and_wait(session.worker)
        await self.pool.stop(session, None)
        self._sessions.pop(session_id, None)
        self._unattended.pop(session_id, None)
        self.grants.clear(session_id)
        await self.ledger.forget(session_id)
        await asyncio.to_thread(self.workdirs.remove, session)
        return True

    async def history(
        self, session_id: str, *, since_seq: int = 0, limit: int = 1000
    ) -> list[AgentEvent]:
        """A session's stored events after ``since_seq`` (every event but ``text_delta``);
        empty without storage."""
        if self.ledger.store is None:
            return []
        return await self.ledger.store.read_events(session_id, since_seq=since_seq, limit=limit)

    async def set_model(self, session_id: str, model: str | None) -> None:
        """Switch the session's model now (and after any respawn)."""
        await self._set(session_id, "model", model)

    async def set_permission_mode(self, session_id: str, mode: str) -> None:
        """Switch the session's permission mode now (and after any respawn)."""
        await self._set(session_id, "mode", mode)

    async def _set(self, session_id: str, name: str, value: str | None) -> None:
        session = self._sessions.get(session_id)
        if session is None:
            raise SessionNotFoundError("No session yet: send a message first.")
        session.overrides[name] = value
        await self.ledger.save(session)
        if session.process is not None and session.process.alive:
            await apply_override(session.process, name, value)

    def unattended_policy(self, session_id: str) -> UnattendedPolicy | None:
        """The unattended policy an ``execute`` gave the session (None: a person is there)."""
        return self._unattended.get(session_id)

    async def post(
        self,
        key: str,
        event: AgentEvent,
        *,
        address: str | None = None,
        user: str | None = None,
        request_id: str | None = None,
    ) -> AgentEvent:
        """Publish an event that belongs to no turn (``turn_id`` empty) on the stream of
        the session of ``key``, created if new: a WAF-asked prompt's
        ``permission_request`` and its ``permission_decision``, a ``message`` delivered to a
        web conversation. Stored and sent to subscribers like every event; ``request_id``
        names the message it is about."""
        if self._closed:
            raise HotplexError("the engine is closed")
        session = await self._session(key, address, user)
        return await self._publisher.post(session, event, request_id=request_id)

    def subscribe(self, session_id: str, maxsize: int = 1000) -> Subscription | None:
        session = self._sessions.get(session_id)
        return session.subscribe(maxsize) if session else None

    # -- timers ------------------------------------------------------------------------

    async def _reap_idle(self) -> None:
        idle_timeout = self.settings.engine.idle_timeout
        period = max(0.05, min(idle_timeout / 4, 30.0))
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for session in list(self._sessions.values()):
                if (
                    session.process is not None
                    and not session.busy
                    and now - session.last_active >= idle_timeout
                    and not self.approvals.pending(session.session_id)
                ):
                    log.info(
                        "session %s idle for %.0fs; stopping its agent",
                        session.key,
                        now - session.last_active,
                    )
                    await self.pool.stop(session, "ended")
