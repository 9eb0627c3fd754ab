"""The engine: a pool of hot agent processes, one per session, and the turns run on them.

``execute(key, prompt)`` returns a :class:`~hotplex.engine.session.Turn` at once; the
session's worker runs turns one at a time (``busy_policy`` decides what a message arriving
during a turn does). Each turn runs under a watchdog (``turn_idle_timeout``, paused while a
permission is pending, and ``turn_max_duration``) that interrupts, then kills. Live
processes are capped at ``max_sessions`` (idle ones evicted LRU), stopped after
``idle_timeout``, and resumed with the same provider session id on the next message.
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
from pathlib import Path
from typing import Any

from hotplex.address import session_id_for
from hotplex.aio import cancel_and_wait
from hotplex.config import Settings, UnattendedPolicy, secret_values
from hotplex.engine.approvals import ADMIN, ANYONE, Approvals
from hotplex.engine.environment import agent_environment
from hotplex.engine.limits import AgentLimits, Confinement, LimitBackend, detect_backend
from hotplex.engine.persistence import reap_orphans, record_of, restore
from hotplex.engine.policy import PolicyChain, SessionGrants, ToolCall, ToolPolicy
from hotplex.engine.session import Session, SessionInfo, Subscription, Turn
from hotplex.engine.spares import Spares
from hotplex.engine.subprocess import use_pidfd_child_watcher
from hotplex.engine.workdirs import WorkDirs
from hotplex.errors import (
    AgentStartError,
    ConfigError,
    HotplexError,
    PoolExhaustedError,
    ProtocolError,
    SessionBusyError,
    SessionNotFoundError,
    UserFacingError,
)
from hotplex.events import AgentEvent, AuditEvent, agent_event
from hotplex.interfaces import AgentProcess, Provider, Storage
from hotplex.storage.ledger import TurnLedger
from hotplex.types import AgentStartSpec, IncomingMessage, ToolDecision, ToolRequest

__all__ = ["Engine"]

log = logging.getLogger(__name__)

Emit = Callable[[AgentEvent | AuditEvent], Awaitable[None]]
#: Awaited before a turn's ``done`` reaches anyone: returns once its events are committed.
Durable = Callable[[AgentEvent], Awaitable[None]]
DURABLE_TIMEOUT = 30.0


class Engine:
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
        """Store the accepted turn: one transaction with a ledger backend, stored as started
        at once when the worker takes it next (an idle session), so no second commit stands
        between the prompt and the agent (see docs/storage.md, "Turn start")."""
        store = self._store
        assert store is not None
        if isinstance(store, TurnLedger):
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
        else:
            await store.enqueue_turn(
                session.session_id,
                turn.turn_id,
                turn.prompt,
                turn.request_id,
                turn.user,
                inbound=inbound,
            )

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
            await _apply_override(session.process, name, value)

    def subscribe(self, session_id: str, maxsize: int = 1000) -> Subscription | None:
        session = self._sessions.get(session_id)
        return session.subscribe(maxsize) if session else None

    # -- events ------------------------------------------------------------------------

    async def _publish(self, session: Session, event: AgentEvent) -> AgentEvent:
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

    # -- processes ---------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        return agent_environment(
            os.environ, extra=self.settings.provider.env, secrets=self._secrets
        )

    def start_spec(
        self, session_id: str, provider_session_id: str, work_dir: Path, resume: bool
    ) -> AgentStartSpec:
        from hotplex.agent_tools import mcp_servers

        return AgentStartSpec(
            session_id=session_id,
            provider_session_id=provider_session_id,
            resume=resume,
            work_dir=work_dir,
            state_dir=self.workdirs.state_dir(provider_session_id),
            env=self.environment(),
            confinement=self._confinement(provider_session_id),
            mcp_servers=mcp_servers(self.settings.engine.data_dir, session_id),
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
                await _apply_override(session.process, name, value)
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

    # -- the gate: policy chain, then a person -----------------------------------------

    def gate_for(self, session: Session) -> Callable[[ToolRequest], Awaitable[ToolDecision]]:
        async def gate(request: ToolRequest) -> ToolDecision:
            return await self._gate(session, request)

        return gate

    async def _gate(self, session: Session, request: ToolRequest) -> ToolDecision:
        call = ToolCall(session.session_id, session.address, session.work_dir, request)
        verdict = await self.policy.check(call)
        if verdict is not None and verdict.action == "deny":
            reason = f"{verdict.rule}: {verdict.reason}" if verdict.rule else verdict.reason
            return ToolDecision("deny", message=reason or "denied by policy")
        if verdict is not None and verdict.action == "allow":
            return ToolDecision("allow")
        if request.stage == "pre":
            return ToolDecision("ask") if verdict is not None else ToolDecision("defer")
        return await self._ask_person(session, request, verdict.reason if verdict else None)

    async def _ask_person(
        self, session: Session, request: ToolRequest, reason: str | None
    ) -> ToolDecision:
        policy = self._policies.get(session.session_id)
        address = session.address
        if policy == "deny":
            return ToolDecision(
                "deny",
                message="Tool calls need approval, and this session is unattended (policy: deny).",
            )
        if policy is not None and hasattr(policy, "allow_tools"):
            if request.tool in policy.allow_tools:
                return ToolDecision("allow")
            return ToolDecision(
                "deny", message=f"{request.tool} is not in this unattended session's allow_tools."
            )
        if policy is not None and hasattr(policy, "route_to"):
            address = policy.route_to
        approvers = self.settings.security.approvers or (
            (session.owner,) if session.owner else (ANYONE,)
        )
        approval = await self.approvals.open(
            kind="tool",
            session_id=session.session_id,
            address=address,
            tool=request.tool,
            input=request.input,
            reason=reason or request.reason,
            approvers=approvers,
        )
        turn = session.current
        if turn is not None:
            turn.pending_permissions += 1
        try:
            await self._publish(
                session,
                agent_event(
                    "permission_request",
                    permission_id=approval.permission_id,
                    tool=request.tool,
                    input=dict(request.input),
                    reason=approval.reason or "",
                    scopes=list(approval.scopes),
                ),
            )
            decision = await self.approvals.wait(approval)
        finally:
            if turn is not None:
                turn.pending_permissions -= 1
                turn.last_activity = time.monotonic()
        data: dict[str, Any] = {
            "permission_id": approval.permission_id,
            "decision": decision.decision,
            "scope": decision.scope,
            "by": decision.by,
        }
        if decision.reason:
            data["reason"] = decision.reason
        await self._publish(session, agent_event("permission_decision", **data))
        if decision.decision == "allow":
            if decision.scope == "session":
                self.grants.grant(session.session_id, request)
            return ToolDecision("allow")
        return ToolDecision("deny", message=decision.reason or f"denied by {decision.by}")

    # -- turns -------------------------------------------------------------------------

    async def _worker(self, session: Session) -> None:
        while True:  # the turn is not kept while waiting for the next one
            await self._run_queued(session, await session.queue.get())

    async def _run_queued(self, session: Session, turn: Turn) -> None:
        session.current = turn
        turn.started_at = time.time()
        turn.last_activity = time.monotonic()
        try:
            if self._store is not None and not turn.stored_started:
                await self._store.start_turn(turn.turn_id)
            await self._run_turn(session, turn)
        except asyncio.CancelledError:
            await self._end_turn(
                session, turn, "interrupted", "engine_stopped", "The service is shutting down."
            )
            raise
        except Exception as exc:
            log.exception("turn %s of %s failed", turn.turn_id, session.key)
            message = (
                str(exc)
                if isinstance(exc, UserFacingError | HotplexError)
                else ("Internal error; see the service log.")
            )
            await self._end_turn(session, turn, "error", _error_code(exc), message)
        finally:
            session.turns += 1
            session.current = None
            session.last_active = time.monotonic()
            turn.finish()
            if not turn.stored_ended:  # else the session was stored with the turn's end
                await self._save_quietly(session)
            # refill after the turn, so starting a spare does not compete with it
            self.spares.refill()

    async def _make_durable(self, session: Session, done: AgentEvent) -> None:
        """Before a turn's ``done`` reaches anyone: its events are committed and the turn is
        stored as finished, so a client that saw ``done`` never sees the turn again."""
        try:
            if self._durable is not None:
                async with asyncio.timeout(DURABLE_TIMEOUT):
                    await self._durable(done)
            store, status = self._store, str(done.data["status"])
            if store is not None and done.turn_id:
                turn = session.current
                if isinstance(store, TurnLedger) and turn is not None:
                    await store.end_turn(done.turn_id, status, record_of(session, ending=True))
                    turn.stored_ended = True
                else:
                    await store.finish_turn(done.turn_id, status)
        except (TimeoutError, HotplexError) as exc:
            log.error(
                "session %s: turn %s not confirmed stored: %r", session.key, done.turn_id, exc
            )

    async def _save_quietly(self, session: Session) -> None:
        """Store the session after a turn; a failure is logged (the turn itself is over)."""
        try:
            await self._save(session)
        except Exception:
            log.exception("session %s: storing the session failed", session.key)

    async def _end_turn(
        self, session: Session, turn: Turn, status: str, code: str, message: str
    ) -> None:
        if turn.status is not None:
            return
        retryable = status == "error" and code != "pool_exhausted"
        await self._publish(
            session, agent_event("error", code=code, message=message, retryable=retryable)
        )
        await self._publish(session, agent_event("done", status=status, duration_ms=0))

    async def _run_turn(self, session: Session, turn: Turn) -> None:
        for attempt in (1, 2):
            process = await self._ensure_process(session)
            watchdog = asyncio.create_task(self._watchdog(session, turn, process))
            try:
                delivered = await self._stream_turn(session, turn, process, retry=attempt == 1)
            finally:
                await cancel_and_wait(watchdog)
            if not process.alive:
                await self._stop_process(session, None)
            if delivered:
                return

    async def _stream_turn(
        self, session: Session, turn: Turn, process: AgentProcess, *, retry: bool
    ) -> bool:
        """Publish the turn's events; False when the agent had died before it saw the
        prompt (nothing came back but the crash report), so the turn can be retried once
        on a respawned agent."""
        produced = False
        async for event in process.turn(turn.prompt):
            if (
                retry
                and not produced
                and event.type == "error"
                and event.data["code"] == "agent_crashed"
            ):
                log.info("session %s: agent was dead before the turn; respawning", session.key)
                return False
            produced = True
            if turn.timeout_reason is not None:
                if event.type == "error":
                    continue  # the kill's crash report; the timeout is the error
                if event.type == "done":
                    await self._publish(
                        session,
                        agent_event(
                            "error",
                            code="turn_timeout",
                            message=turn.timeout_reason,
                            retryable=True,
                        ),
                    )
                    event = agent_event(
                        "done", status="error", duration_ms=int(event.data["duration_ms"])
                    )
            await self._publish(session, event)
        return True

    async def _watchdog(self, session: Session, turn: Turn, process: AgentProcess) -> None:
        engine = self.settings.engine
        started = time.monotonic()
        while True:
            now = time.monotonic()
            max_deadline = started + engine.turn_max_duration
            idle_deadline = (
                float("inf")
                if turn.pending_permissions
                else turn.last_activity + engine.turn_idle_timeout
            )
            deadline = min(max_deadline, idle_deadline)
            if now >= deadline:
                break
            await asyncio.sleep(min(deadline - now, 1.0))
        if now >= max_deadline:
            turn.timeout_reason = (
                f"The turn ran longer than {engine.turn_max_duration:.0f}s and was stopped."
            )
        else:
            turn.timeout_reason = (
                f"The agent produced no output for "
                f"{engine.turn_idle_timeout:.0f}s; the turn was stopped."
            )
        log.warning("session %s: %s", session.key, turn.timeout_reason)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.interrupt(), engine.kill_grace)
        try:
            await asyncio.wait_for(turn.completed.wait(), engine.kill_grace)
        except TimeoutError:
            log.warning(
                "session %s: interrupt did not end the turn; killing the agent", session.key
            )
            await process.close(engine.kill_grace)

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


async def _apply_override(process: AgentProcess, name: str, value: str | None) -> None:
    if name == "model":
        await process.control("set_model", model=value)
    else:
        await process.control("set_permission_mode", mode=value)


_ERROR_CODES: tuple[tuple[type[BaseException], str], ...] = (
    (PoolExhaustedError, "pool_exhausted"),
    (AgentStartError, "agent_start_failed"),
    (ProtocolError, "protocol_error"),
    (ConfigError, "config_error"),
)


def _error_code(exc: BaseException) -> str:
    return next((code for kind, code in _ERROR_CODES if isinstance(exc, kind)), "internal_error")
