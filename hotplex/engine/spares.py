"""Prewarmed spare agents (``engine.prewarm``), so a new conversation's first turn is hot.

A spare is started with its own provider session id and work directory, exactly as a new
session would be; a new conversation without a project takes one, and with it that id and
directory. Spares count toward ``max_sessions`` but never evict a session.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

from hotplex.aio import cancel_and_wait
from hotplex.engine.gate import ToolGate
from hotplex.engine.launcher import Launcher
from hotplex.engine.session import Session
from hotplex.engine.slots import Slots
from hotplex.errors import HotplexError
from hotplex.interfaces import AgentProcess
from hotplex.types import ToolDecision, ToolRequest

__all__ = ["Spares"]

log = logging.getLogger(__name__)


class _GateRef:
    """The gate of a spare: it answers for whichever session takes the spare."""

    def __init__(self, gate: ToolGate) -> None:
        self.gate = gate
        self.session: Session | None = None

    async def __call__(self, request: ToolRequest) -> ToolDecision:
        if self.session is None:
            return ToolDecision("deny", message="no conversation owns this agent yet")
        return await self.gate.for_session(self.session)(request)


@dataclass
class _Spare:
    process: AgentProcess
    provider_session_id: str
    work_dir: Path
    gate: _GateRef


class Spares:
    def __init__(self, count: int, *, launcher: Launcher, slots: Slots, gate: ToolGate) -> None:
        self._launcher = launcher
        self._slots = slots
        self._gate = gate
        self.count = count
        self._ready: list[_Spare] = []
        self._filler: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def ready(self) -> int:
        return len(self._ready)

    def start(self) -> None:
        self.refill()

    def refill(self) -> None:
        if self._closed or self.count == 0 or len(self._ready) >= self.count:
            return
        if self._filler is None or self._filler.done():
            self._filler = asyncio.create_task(self._fill(), name="engine-prewarm")

    async def _fill(self) -> None:
        launcher, slots = self._launcher, self._slots
        while not self._closed and len(self._ready) < self.count:
            try:
                slots.reserve(evict=False)
            except HotplexError:
                return  # the pool is full of real sessions: no spares now
            provider_session_id = str(uuid.uuid4())
            work_dir = launcher.workdirs.spare_dir(provider_session_id)
            gate = _GateRef(self._gate)
            spec = launcher.start_spec(provider_session_id, provider_session_id, work_dir, False)
            try:
                process = await launcher.start(spec, gate)
            except Exception:
                slots.release()
                log.exception("prewarming a spare agent failed")
                return
            except BaseException:
                slots.release()
                raise
            if self._closed:
                await process.close(1.0)
                slots.release()
                return
            await self._prime(process)
            self._ready.append(_Spare(process, provider_session_id, work_dir, gate))

    @staticmethod
    async def _prime(process: AgentProcess) -> None:
        """A fresh CLI builds its context (system prompt, tools, git state) lazily on the
        first message; asking for the context usage builds it now, so the first turn of
        the conversation that takes this spare is nearly hot. Token counting is free."""
        try:
            await process.control("get_context_usage", timeout=30.0)
        except NotImplementedError:
            pass  # a provider without the request: nothing to prime
        except Exception as exc:
            log.info("priming a spare agent failed (it stays usable): %r", exc)

    def take(self, session: Session) -> AgentProcess | None:
        """Hand a ready spare to a new session without a project (it keeps the slot)."""
        if self._launcher.workdirs.project_for(session.address) is not None:
            return None
        if session.work_dir.exists():
            return None  # files were put there for it (attachments): it keeps its directory
        while self._ready:
            spare = self._ready.pop(0)
            if spare.process.alive:
                spare.gate.session = session
                session.provider_session_id = spare.provider_session_id
                session.work_dir = spare.work_dir
                return spare.process
            self._slots.release()
        return None

    async def aclose(self) -> None:
        self._closed = True
        await cancel_and_wait(self._filler)
        spares, self._ready = self._ready, []
        for spare in spares:
            await spare.process.close(1.0)
            self._slots.release()
