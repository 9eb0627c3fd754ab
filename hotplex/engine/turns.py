"""The engine's turns: each session's worker runs its queued turns one at a time, each
under a watchdog; a turn's ``done`` reaches clients only once the turn is stored
(docs/engine.md, "Turns")."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from hotplex.aio import cancel_and_wait
from hotplex.config import Settings
from hotplex.engine.persistence import record_of
from hotplex.engine.session import Session, Turn
from hotplex.engine.spares import Spares
from hotplex.errors import (
    AgentStartError,
    ConfigError,
    HotplexError,
    PoolExhaustedError,
    ProtocolError,
    UserFacingError,
)
from hotplex.events import AgentEvent, agent_event
from hotplex.interfaces import AgentProcess, Storage

__all__ = ["DURABLE_TIMEOUT", "Durable", "TurnRunner"]

log = logging.getLogger("hotplex.engine.engine")

#: Awaited before a turn's ``done`` reaches anyone: returns once its events are committed.
Durable = Callable[[AgentEvent], Awaitable[None]]
DURABLE_TIMEOUT = 30.0


class TurnRunner:
    """Part of :class:`~hotplex.engine.engine.Engine`: the sessions' workers."""

    if TYPE_CHECKING:
        settings: Settings
        spares: Spares
        _store: Storage | None
        _durable: Durable | None

        async def _publish(self, session: Session, event: AgentEvent) -> AgentEvent: ...

        async def _save(self, session: Session) -> None: ...

        async def _ensure_process(self, session: Session) -> AgentProcess: ...

        async def _stop_process(self, session: Session, state: str | None) -> None: ...

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
                if turn is not None:
                    await store.end_turn(done.turn_id, status, record_of(session, ending=True))
                    turn.stored_ended = True
                else:
                    await store.end_turn(done.turn_id, status)
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


_ERROR_CODES: tuple[tuple[type[BaseException], str], ...] = (
    (PoolExhaustedError, "pool_exhausted"),
    (AgentStartError, "agent_start_failed"),
    (ProtocolError, "protocol_error"),
    (ConfigError, "config_error"),
)


def _error_code(exc: BaseException) -> str:
    return next((code for kind, code in _ERROR_CODES if isinstance(exc, kind)), "internal_error")
