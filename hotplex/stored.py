"""What storage keeps: the records the :class:`~hotplex.interfaces.Storage` interface reads
and writes (part of the contract; re-exported by :mod:`hotplex.storage`).

Plain frozen dataclasses with no database import. :class:`SessionRecord` is where a stored
session's fields are written down: the row mapper (:mod:`hotplex.storage.rows`) and the
engine's persistence map them by name, and a test holds the ``sessions`` table to them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from hotplex.events import AuditEvent
from hotplex.types import ApprovalRequest

__all__ = [
    "SESSION_FIELDS",
    "SESSION_STATES",
    "TURN_STATES",
    "ApprovalRecord",
    "AuditRecord",
    "QueuedTurn",
    "SessionRecord",
    "SessionState",
    "TurnState",
]

SessionState = Literal["idle", "running", "stopped"]
TurnState = Literal["queued", "started", "finished"]
SESSION_STATES: frozenset[str] = frozenset({"idle", "running", "stopped"})
TURN_STATES: frozenset[str] = frozenset({"queued", "started", "finished"})


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One stored session: what the engine needs to find, resume or reap it after a restart.

    ``agent_start_time`` is the agent process's start time in clock ticks since boot
    (``/proc/<pid>/stat`` field 22): with the pid it identifies the process even after the
    pid was reused. ``running_turn_id`` is the turn in flight (None when idle).
    """

    session_id: str
    key: str
    address: str | None = None
    owner: str | None = None
    provider_session_id: str = ""
    work_dir: str = ""
    state: SessionState = "stopped"
    agent_pid: int | None = None
    agent_pgid: int | None = None
    agent_start_time: int | None = None
    last_seq: int = 0
    turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    overrides: dict[str, str | None] = field(default_factory=dict)
    running_turn_id: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.state not in SESSION_STATES:
            raise ValueError(f"session state {self.state!r} not in {sorted(SESSION_STATES)}")


#: The stored session's fields, in order (the ``sessions`` table's columns).
SESSION_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(SessionRecord))


@dataclass(frozen=True, slots=True)
class QueuedTurn:
    """A turn accepted for a session and not finished yet (``queued`` or ``started``)."""

    turn_id: str
    session_id: str
    prompt: str
    request_id: str | None
    user: str | None
    state: TurnState
    created_at: float
    started_at: float | None = None


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    """A stored approval request and its decision (``decision`` None: not decided yet)."""

    request: ApprovalRequest
    decision: str | None = None
    decided_by: str | None = None
    scope: str | None = None
    decided_at: float | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A stored audit event with its storage id (ids increase; page with ``before_id``)."""

    id: int
    event: AuditEvent

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **self.event.to_dict()}
