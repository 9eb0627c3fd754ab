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
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from hotplex.address import session_id_for
from hotplex.aio import cancel_and_wait
from hotplex.config import Settings, UnattendedPolicy, secret_values
from hotplex.engine.approvals import ADMIN, Approvals
from hotplex.engine.gate import ToolGate
from hotplex.engine.limits import LimitBackend, detect_backend
from hotplex.engine.persistence import reap_orphans, record_of, restore
from hotplex.engine.policy import PolicyChain, SessionGrants, ToolPolicy
from hotplex.engine.pool import ProcessPool, apply_override
from hotplex.engine.session import Session, SessionInfo, Subscription, Turn
from hotplex.engine.spares import Spares
from hotplex.engine.subprocess import use_pidfd_child_watcher
from hotplex.engine.survivors import sweep_survivors
from hotplex.engine.turns import DURABLE_TIMEOUT, Durable, TurnRunner
from hotplex.engine.workdirs import WorkDirs
from hotplex.errors import (
    HotplexError,
    SessionBusyError,
    SessionNotFoundError,
)
from hotplex.events import AgentEvent, AuditEvent, agent_event
from hotplex.interfaces import Provider, Storage
from hotplex.types import IncomingMessage

__all__ = ["Engine"]

log = logging.getLogger(__name__)

Emit = Callable[[AgentEvent | AuditEvent], Awaitable[None]]


class Engine(TurnRunner, ProcessPool, ToolGate):
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
        self._emit_sink = emit
        self._store = store
        self._durable = durable
        self.approvals = Approvals(
            timeout=settings.security.approval_timeout, audit=self._emit_audit, store=store
        )
        self.grants = SessionGrants()
        self.policy = PolicyChain([*policies, self.grants])
        self.workdirs = WorkDirs(settings)
        self._sessions: dict[str, Session] = {}
        self._policies: dict[str, UnattendedPolicy | None] = {}
        self._live = 0
        self._pool_lock = asyncio.Lock()
        self._reaper: asyncio.Task[None] | None = None
        self._secrets = secret_values(settings)
        self._limit_backend: LimitBackend | None = None
        self.spares = Spares(self, settings.engine.prewarm)
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Engine:
        limits = self.settings.engine.limits
        if limits.backend != "off":
            prefer = None if limits.backend == "auto" else limits.backend
            self._limit_backend = await asyncio.to_thread(detect_backend, prefer=prefer)
            log.info("agent limits: %s", self._limit_backend.name)
        use_pidfd_child_watcher()
        # agents a killed predecessor started but never recorded (see survivors.py)
        await asyncio.to_thread(sweep_survivors, self.settings.engine.data_dir)
        if self._store is not None:
            await self._recover(self._store)
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
            *(self._stop_process(s, "ended") for s in sessions), return_exceptions=True
        )
        await self.provider.aclose()

    @classmethod
    @asynccontextmanager
    async def open(
        cls, config: str | os.PathLike[str] | None = None, *, settings: Settings | None = None
    ) -> AsyncIterator[Engine]:
        """Compose plugins and config the way the daemon does, and run an engine::

        async with Engine.open("hotplex.yaml") as engine:
            turn = await engine.execute("my-key", "hello")
            async for event in turn:
                print(event.to_json())
        """
        from hotplex.cli.bootstrap import compose
        from hotplex.context import PluginContext

        composition = compose(None if config is None else str(config))
        settings = settings or composition.config.settings
        plugins = composition.plugins
        ctx = PluginContext(settings=settings, plugins=plugins)
        spec = plugins.providers().get(settings.provider.type)
        if spec is None:
            raise HotplexError(f"provider.type {settings.provider.type!r} is not registered")
        async with cls(settings, spec.factory(ctx)) as engine:
            yield engine

    # -- sessions ----------------------------------------------------------------------

    def session_id(self, key: str) -> str:
        return session_id_for(key, self.settings.engine.namespace)

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def sessions(self) -> list[SessionInfo]:
        return [s.info() for s in self._sessions.values()]

    @property
    def live_processes(self) -> int:
        return self._live

    async def _session(self, key: str, address: str | None, owner: str | None) -> Session:
        session_id = self.session_id(key)
        session = self._sessions.get(session_id)
        if session is not None:
            self._ensure_worker(session)
            return session
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
        self._ensure_worker(session)
        await self._save(session)
        await self._emit_audit(
            AuditEvent(
                "session.created",
                {"key": key, "address": address},
                session_id=session_id,
                actor=owner,
            )
        )
        return session

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
    ) -> Turn:
        """Queue a prompt on the session of ``key`` and return its turn (iterate it for the
        events). ``policy`` makes the session unattended (cron, webhooks, relay);
        ``inbound`` is the stored message this turn answers (marked done with the turn)."""
        if self._closed:
            raise HotplexError("the engine is closed")
        session = await self._session(key, address, user)
        if policy is not None:
            self._policies[session.session_id] = policy
        busy = self.settings.engine.busy_policy
        if session.busy and busy == "reject":
            raise SessionBusyError("A turn is already running; wait for it or stop it first.")
        turn = Turn(prompt, request_id=request_id, user=user)
        async with session.accept_lock:  # turns reach the queue in the order they are stored
            if self._store is not None:  # accepted means stored: a restart runs it
                await self._accept(session, turn, inbound)
            if session.busy and busy == "interrupt" and session.current is not None:
                await self._interrupt_turn(session, session.current)
            session.queue.put_nowait(turn)
        return turn

    async def _accept(self, session: Session, turn: Turn, inbound: IncomingMessage | None) -> None:
        """Store the accepted turn, as started at once when the worker takes it next (an
        idle session), so no second commit stands between the prompt and the agent (see
        docs/storage.md, "Turn start")."""
        store = self._store
        assert store is not None
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

    def _ensure_worker(self, session: Session) -> None:
        if session.worker is None or session.worker.done():
            session.worker = asyncio.create_task(
                self._worker(session), name=f"session:{session.key}"
            )

    async def _save(self, session: Session) -> None:
        if self._store is not None:
            await self._store.save_session(record_of(session))

    async def _recover(self, store: Storage) -> None:
        """Reap a crashed predecessor's agents, restore sessions, report interrupted turns
        and requeue the queued ones (see :mod:`hotplex.engine.persistence`)."""
        records = await store.load_sessions()
        killed = await asyncio.to_thread(reap_orphans, records, self._limit_backend)
        for record in records:
            self._sessions[record.session_id] = await restore(store, record)
        pending = await store.pending_turns()
        for queued in pending:
            session = self._sessions.get(queued.session_id)
            if session is None:
                await store.finish_turn(queued.turn_id, "interrupted")
                continue
            turn = Turn(
                queued.prompt,
                request_id=queued.request_id,
                user=queued.user,
                turn_id=queued.turn_id,
            )
            if queued.state == "started":
                await self._report_interrupted(session, turn)
                await self._save(session)
            else:
                session.queue.put_nowait(turn)
                self._ensure_worker(session)
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
            await self._publish(
                session,
                agent_event(
                    "error",
                    code="interrupted_by_restart",
                    retryable=True,
                    message="HotPlex restarted while this turn was running; send the message "
                    "again to continue.",
                ),
            )
            await self._publish(session, agent_event("done", status="interrupted", duration_ms=0))
        finally:
            session.current = None

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
        await self._stop_process(session, None)
        session.provider_session_id = str(uuid.uuid4())
        session.started_once = False
        self.grants.clear(session_id)
        await self._save(session)
        await self._publish(session, agent_event("session", state="reset"))

    async def stop_session(self, session_id: str, *, by: str | None = None) -> bool:
        """Kill the session's process group (admin action); the next message resumes."""
        session = self._sessions.get(session_id)
        if session is None:
            return False
        if session.current is not None:
            await self._interrupt_turn(session, session.current)
        await self._stop_process(session, "ended")
        await self._emit_audit(
            AuditEvent("session.killed", {"key": session.key}, session_id=session_id, actor=by)
        )
        return True

    async def history(
        self, session_id: str, *, since_seq: int = 0, limit: int = 1000
    ) -> list[AgentEvent]:
        """A session's stored events after ``since_seq`` (every event but ``text_delta``);
        empty without storage."""
        if self._store is None:
            return []
        return await self._store.read_events(session_id, since_seq=since_seq, limit=limit)

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
        await self._save(session)
        if session.process is not None and session.process.alive:
            await apply_override(session.process, name, value)

    def unattended_policy(self, session_id: str) -> UnattendedPolicy | None:
        """The unattended policy an ``execute`` gave the session (None: a person is there)."""
        return self._policies.get(session_id)

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
        the session of ``key``, created if new: a WAF-asked prompt's ``permission_request``
        and its ``permission_decision``. Stored and sent to subscribers like every event;
        ``request_id`` names the message it is about."""
        if self._closed:
            raise HotplexError("the engine is closed")
        session = await self._session(key, address, user)
        async with session.publish_lock:
            session.seq += 1
            stamped = event.stamped(
                session_id=session.session_id, turn_id="", seq=session.seq, request_id=request_id
            )
            if self._emit_sink is not None:
                await self._emit_sink(stamped)
            session.deliver(stamped)
            return stamped

    def subscribe(self, session_id: str, maxsize: int = 1000) -> Subscription | None:
        session = self._sessions.get(session_id)
        return session.subscribe(maxsize) if session else None

    # -- events ------------------------------------------------------------------------

    async def _publish(self, session: Session, event: AgentEvent) -> AgentEvent:
        """Place an event in the session's one ordered stream. The turn's worker and its
        tool gate publish concurrently; the session's lock keeps the wait for the turn's
        record, the stamp, the sinks and the delivery of one event together, so every
        client (and every sink) gets the events in ``seq`` order."""
        async with session.publish_lock:
            turn = session.current
            if turn is not None and turn.synced is not None:
                await self._until_synced(session, turn)
            stamped = session.stamp(event)
            if self._emit_sink is not None:
                await self._emit_sink(stamped)
            if stamped.type == "done":
                await self._make_durable(session, stamped)
            session.deliver(stamped)
            return stamped

    async def _until_synced(self, session: Session, turn: Turn) -> None:
        """Nothing of a turn is published before its record is on disk (its prompt may
        already be with the agent: see docs/storage.md, "Turn start")."""
        synced, turn.synced = turn.synced, None
        try:
            if synced is not None:
                async with asyncio.timeout(DURABLE_TIMEOUT):
                    await synced
        except (TimeoutError, HotplexError) as exc:
            log.error("session %s: turn %s not synced: %r", session.key, turn.turn_id, exc)

    async def _emit_audit(self, event: AuditEvent) -> None:
        if self._emit_sink is not None:
            await self._emit_sink(event)

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
                    await self._stop_process(session, "ended")
