"""AgentEvent and AuditEvent: the one JSON shape every consumer sees.

An AgentEvent is ``{"type", "session_id", "turn_id", "seq", "ts", "request_id"?, "data"}``.
``seq`` increases per session and is persisted; ``ts`` is Unix time in seconds;
``request_id`` echoes the ``execute`` that started the turn. :data:`EVENT_DATA` lists the
``data`` keys of each type (required, optional).

Providers build events with :func:`agent_event` and leave ``session_id``, ``turn_id`` and
``seq`` empty; the engine stamps them with :meth:`AgentEvent.stamped`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

__all__ = [
    "AUDIT_TYPES",
    "EVENT_DATA",
    "AgentEvent",
    "AuditEvent",
    "agent_event",
]

EventType = Literal[
    "session",
    "thinking",
    "text_delta",
    "text",
    "tool_use",
    "tool_result",
    "permission_request",
    "permission_decision",
    "usage",
    "status",
    "error",
    "done",
    "message",
]

#: type -> (required data keys, optional data keys)
EVENT_DATA: Final[dict[str, tuple[frozenset[str], frozenset[str]]]] = {
    "session": (frozenset({"state"}), frozenset()),
    "thinking": (frozenset({"text"}), frozenset()),
    "text_delta": (frozenset({"text"}), frozenset()),
    "text": (frozenset({"text"}), frozenset()),
    "tool_use": (frozenset({"tool_use_id", "name", "input"}), frozenset()),
    "tool_result": (frozenset({"tool_use_id", "output", "is_error"}), frozenset()),
    "permission_request": (
        frozenset({"permission_id", "tool", "input", "scopes"}),
        frozenset({"reason", "kind"}),
    ),
    "permission_decision": (
        frozenset({"permission_id", "decision", "scope", "by"}),
        frozenset({"reason"}),
    ),
    "usage": (
        frozenset(
            {
                "input_tokens",
                "output_tokens",
                "cache_read_tokens",
                "cache_write_tokens",
                "cost_usd",
                "context_used",
                "context_window",
            }
        ),
        frozenset(),
    ),
    "status": (frozenset({"text"}), frozenset()),
    "error": (frozenset({"code", "message", "retryable"}), frozenset()),
    "done": (frozenset({"status", "duration_ms"}), frozenset()),
    # a message delivered into the conversation from outside a turn (turn_id empty): a
    # cron job, a relay, a webhook posting to a web chat address; ``from`` names the sender
    "message": (frozenset({"text", "from"}), frozenset()),
}

SESSION_STATES: Final = frozenset({"started", "resumed", "reset", "ended"})
DONE_STATUSES: Final = frozenset({"ok", "error", "interrupted"})

#: The closed list of audit event types.
AUDIT_TYPES: Final = frozenset(
    {
        "session.created",
        "session.evicted",
        "session.killed",
        "waf.verdict",
        "approval.requested",
        "approval.decided",
        "agent_tool.refused",
        "relay.sent",
        "relay.dropped",
        "cron.run",
        "delivery.failed",
    }
)


def _check_data(kind: str, data: dict[str, Any]) -> None:
    try:
        required, optional = EVENT_DATA[kind]
    except KeyError:
        raise ValueError(f"unknown AgentEvent type {kind!r}") from None
    keys = data.keys()
    missing = required - keys
    if missing:
        raise ValueError(f"{kind} event lacks data keys {sorted(missing)}")
    extra = keys - required - optional
    if extra:
        raise ValueError(f"{kind} event has unknown data keys {sorted(extra)}")
    if kind == "session" and data["state"] not in SESSION_STATES:
        raise ValueError(f"session state {data['state']!r} not in {sorted(SESSION_STATES)}")
    if kind == "done" and data["status"] not in DONE_STATUSES:
        raise ValueError(f"done status {data['status']!r} not in {sorted(DONE_STATUSES)}")


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """One event of a turn, as stored and as sent to every client."""

    type: str
    data: dict[str, Any]
    session_id: str = ""
    turn_id: str = ""
    seq: int = 0
    ts: float = field(default_factory=time.time)
    request_id: str | None = None

    def stamped(
        self, *, session_id: str, turn_id: str, seq: int, request_id: str | None
    ) -> AgentEvent:
        """The same event placed in a session's stream."""
        return replace(self, session_id=session_id, turn_id=turn_id, seq=seq, request_id=request_id)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type,
            "session_id": self.session_id,
            "turn_id": self.turn_id,
            "seq": self.seq,
            "ts": self.ts,
        }
        if self.request_id is not None:
            out["request_id"] = self.request_id
        out["data"] = self.data
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> AgentEvent:
        """Parse and validate one event; raises ValueError naming what is wrong."""
        allowed = {"type", "session_id", "turn_id", "seq", "ts", "request_id", "data"}
        extra = raw.keys() - allowed
        if extra:
            raise ValueError(f"AgentEvent has unknown keys {sorted(extra)}")
        kind = raw.get("type")
        data = raw.get("data")
        if not isinstance(kind, str) or not isinstance(data, dict):
            raise ValueError("AgentEvent needs a string 'type' and an object 'data'")
        _check_data(kind, data)
        seq = raw.get("seq", 0)
        ts = raw.get("ts", 0.0)
        if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(ts, int | float):
            raise ValueError("AgentEvent 'seq' must be an integer and 'ts' a number")
        request_id = raw.get("request_id")
        return cls(
            type=kind,
            data=data,
            session_id=str(raw.get("session_id", "")),
            turn_id=str(raw.get("turn_id", "")),
            seq=seq,
            ts=float(ts),
            request_id=None if request_id is None else str(request_id),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> AgentEvent:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("AgentEvent JSON must be an object")
        return cls.from_dict(raw)


def agent_event(kind: EventType, /, **data: Any) -> AgentEvent:
    """Build a validated, unstamped event: ``agent_event("text_delta", text="hi")``."""
    _check_data(kind, data)
    return AgentEvent(type=kind, data=data)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Something a person may need to review later: ``{"type", "ts", "session_id"?,
    "actor"?, "data"}``. ``type`` is one of :data:`AUDIT_TYPES`; ``actor`` names who caused
    it (an API key name, a chat user id, ``"system"``)."""

    type: str
    data: dict[str, Any]
    session_id: str | None = None
    actor: str | None = None
    ts: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.type not in AUDIT_TYPES:
            raise ValueError(f"unknown audit event type {self.type!r}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "ts": self.ts}
        if self.session_id is not None:
            out["session_id"] = self.session_id
        if self.actor is not None:
            out["actor"] = self.actor
        out["data"] = self.data
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> AuditEvent:
        extra = raw.keys() - {"type", "ts", "session_id", "actor", "data"}
        if extra:
            raise ValueError(f"AuditEvent has unknown keys {sorted(extra)}")
        data = raw.get("data")
        if not isinstance(data, dict):
            raise ValueError("AuditEvent needs an object 'data'")
        return cls(
            type=str(raw.get("type")),
            data=data,
            session_id=raw.get("session_id"),
            actor=raw.get("actor"),
            ts=float(raw.get("ts", 0.0)),
        )
