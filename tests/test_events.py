from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotplex.events import AUDIT_TYPES, EVENT_DATA, AgentEvent, AuditEvent, agent_event

SAMPLES = {
    "session": {"state": "started"},
    "thinking": {"text": "hmm"},
    "text_delta": {"text": "he"},
    "text": {"text": "hello"},
    "tool_use": {"tool_use_id": "t1", "name": "Bash", "input": {"command": "ls"}},
    "tool_result": {"tool_use_id": "t1", "output": "a\nb", "is_error": False},
    "permission_request": {
        "permission_id": "p1",
        "tool": "Bash",
        "input": {"command": "ls"},
        "reason": "asks",
        "scopes": ["once", "session"],
    },
    "permission_decision": {
        "permission_id": "p1",
        "decision": "allow",
        "scope": "once",
        "by": "alice",
    },
    "usage": {
        "input_tokens": 1,
        "output_tokens": 2,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "cost_usd": 0.001,
        "context_used": 3,
        "context_window": 200000,
    },
    "status": {"text": "requesting"},
    "error": {"code": "agent_crashed", "message": "boom", "retryable": True},
    "done": {"status": "ok", "duration_ms": 12},
    "message": {"text": "The nightly build failed.", "from": "cron"},
}


def test_samples_cover_every_type() -> None:
    assert set(SAMPLES) == set(EVENT_DATA)


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_round_trip_is_one_json_shape(kind: str) -> None:
    event = agent_event(kind, **SAMPLES[kind]).stamped(  # type: ignore[arg-type]
        session_id="s", turn_id="t", seq=7, request_id="r1"
    )
    raw = json.loads(event.to_json())
    assert list(raw) == ["type", "session_id", "turn_id", "seq", "ts", "request_id", "data"]
    assert AgentEvent.from_json(event.to_json()) == event


def test_request_id_is_omitted_when_absent() -> None:
    event = agent_event("text", text="x").stamped(
        session_id="s", turn_id="t", seq=1, request_id=None
    )
    assert "request_id" not in event.to_dict()
    assert AgentEvent.from_dict(event.to_dict()) == event


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"type": "nope", "data": {}}, "unknown AgentEvent type"),
        ({"type": "text", "data": {}}, "lacks data keys"),
        ({"type": "text", "data": {"text": "a", "x": 1}}, "unknown data keys"),
        ({"type": "done", "data": {"status": "meh", "duration_ms": 1}}, "done status"),
        ({"type": "text", "data": {"text": "a"}, "extra": 1}, "unknown keys"),
        ({"type": "text", "data": {"text": "a"}, "seq": "1"}, "integer"),
    ],
)
def test_invalid_events_are_refused(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AgentEvent.from_dict(raw)


@given(st.text(), st.integers(min_value=0, max_value=2**53))
def test_text_round_trips_any_unicode(text: str, seq: int) -> None:
    event = AgentEvent(type="text", data={"text": text}, session_id="s", turn_id="t", seq=seq)
    assert AgentEvent.from_json(event.to_json()) == event


def test_audit_events_are_a_closed_list() -> None:
    for kind in AUDIT_TYPES:
        event = AuditEvent(type=kind, data={"k": 1}, session_id="s", actor="alice")
        assert AuditEvent.from_dict(json.loads(event.to_json())) == event
    with pytest.raises(ValueError, match="unknown audit event type"):
        AuditEvent(type="session.exploded", data={})
