"""The engine's turns: each session's worker runs its queued turns one at a time, each
under a watchdog; a turn's ``done`` reaches clients only once the turn is stored (the
:class:`~hotplex.engine.ledger.TurnLedger`, docs/engine.md, "Turns")."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from hotplex.aio import cancel_and_wait
from hotplex.config import Settings
from hotplex.engine.ledger import TurnLedger
from hotplex.engine.pool import Pool
from hotplex.engine.publisher import Publisher
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
from hotplex.events import agent_event
from hotplex.interfaces import AgentProcess

__all__ = ["TurnRunner"]

log = logging.getLogger("hotplex.engine.engine")


class TurnRunner:
    """One worker task per session runs its queued turns, one at a time."""

    def __init__(
        self,
        settings: Settings,
        *,
        pool: Pool,
        ledger: TurnLedger,
        publisher: Publisher,
        spares: Spares,
    ) -> None:
        self._limits = settings.engine
        self._pool = pool
        self._ledger = ledger
        self._publisher = publisher
        self._spares = spares

    def ensure_worker(self, session: Session) -> None:
        """Start the session's worker unless it runs."""
        if session.worker is None or session.worker.done():
            session.worker = asyncio.create_task(
                self._worker(session), name=f"session:{session.key}"
            )

    async def _worker(self, session: Session) -> None:
        while True:  # the turn is not kept while waiting for the next one
            await self._run_queued(session, await session.queue.get())

    async def _run_queued(self, session: Session, turn: Turn) -> None:
        session.current = turn
        turn.started_at = time.time()
        turn.last_activity = time.monotonic()
        try:
            await self._ledger.start(turn)
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
            await self._ledger.turn_over(session, turn)
            # refill after the turn, so starting a spare does not compete with it
            self._spares.refill()

    async def _end_turn(
        self, session: Session, turn: Turn, status: str, code: str, message: str
    ) -> None:
        if turn.status is not None:
            return
        retryable = status == "error" and code != "pool_exhausted"
        await self._publisher.publish(
            session, agent_event("error", code=code, message=message, retryable=retryable)
        )
        await self._publisher.publish(session, agent_event("done", status=status, duration_ms=0))

    async def _run_turn(self, session: Session, turn: Turn) -> None:
        for attempt in (1, 2):
            process = await self._pool.ensure(session)
            watchdog = asyncio.create_task(self._watchdog(session, turn, process))
            try:
                delivered = await self._stream_turn(session, turn, process, retry=attempt == 1)
            finally:
                await cancel_and_wait(watchdog)
            if not process.alive:
                await self._pool.stop(session, None)
            if delivered:
                return

    async def _stream_turn(
        self, session: Session, turn: Turn, process: AgentProcess, *, retry: bool
    ) -> bool:
        """Publish the turn's events; False when the agent had died before it saw the
        prompt (nothing came back but the crash report), so the turn can be retried once
        on a respawned agent."""
        produced = False
        events = (
            process.turn(turn.prompt, images=turn.images)
            if turn.images
            else process.turn(turn.prompt)
        )
        async for event in events:
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
                    await self._publisher.publish(
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
            await self._publisher.publish(session, event)
        return True

    async def _watchdog(self, session: Session, turn: Turn, process: AgentProcess) -> None:
        engine = self._limits
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
