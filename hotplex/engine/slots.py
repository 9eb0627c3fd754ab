"""The ``max_sessions`` cap on live agent processes, with the least recently used idle
session as the one to make room."""

from __future__ import annotations

from collections.abc import Mapping

from hotplex.engine.approvals import Approvals
from hotplex.engine.session import Session
from hotplex.errors import PoolExhaustedError

__all__ = ["Slots"]


class Slots:
    def __init__(
        self, limit: int, *, sessions: Mapping[str, Session], approvals: Approvals
    ) -> None:
        self.limit = limit
        self.live = 0
        self._sessions = sessions
        self._approvals = approvals

    def reserve(self, *, evict: bool = True) -> Session | None:
        """Count one more live process. When the cap is reached, the slot of the least
        recently used idle session is taken over and that session returned: the caller
        stops its process (which releases one slot). PoolExhaustedError when every live
        session is busy, or ``evict`` is false."""
        if self.live < self.limit:
            self.live += 1
            return None
        victim = self._lru_idle() if evict else None
        if victim is None:
            raise PoolExhaustedError(
                f"All {self.limit} agent sessions are busy; try again when one finishes."
            )
        self.live += 1  # the victim's slot is handed over when its process stops
        return victim

    def release(self) -> None:
        self.live -= 1

    def _lru_idle(self) -> Session | None:
        idle = [
            s
            for s in self._sessions.values()
            if s.process is not None
            and s.process.alive
            and not s.busy
            and not self._approvals.pending(s.session_id)
        ]
        return min(idle, key=lambda s: s.last_active, default=None)
