"""Conversions between the records HotPlex passes around and table rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from hotplex.events import AgentEvent, AuditEvent
from hotplex.stored import (
    SESSION_FIELDS,
    ApprovalRecord,
    AuditRecord,
    QueuedTurn,
    SessionRecord,
    TurnState,
)
from hotplex.types import ApprovalRequest, Attachment, IncomingMessage, MessageRef

__all__ = [
    "approval_from_row",
    "approval_row",
    "audit_from_row",
    "audit_row",
    "event_from_row",
    "event_row",
    "inbound_payload",
    "message_from_payload",
    "session_from_row",
    "session_row",
    "turn_from_row",
]

Row = Mapping[Any, Any]


def event_row(event: AgentEvent, stored_at: float) -> dict[str, Any]:
    return {
        "session_id": event.session_id,
        "seq": event.seq,
        "turn_id": event.turn_id,
        "type": event.type,
        "ts": event.ts,
        "request_id": event.request_id,
        "data": event.data,
        "stored_at": stored_at,
    }


def event_from_row(row: Row) -> AgentEvent:
    return AgentEvent(
        type=row["type"],
        data=row["data"],
        session_id=row["session_id"],
        turn_id=row["turn_id"],
        seq=int(row["seq"]),
        ts=float(row["ts"]),
        request_id=row["request_id"],
    )


def audit_row(event: AuditEvent) -> dict[str, Any]:
    return {
        "type": event.type,
        "ts": event.ts,
        "session_id": event.session_id,
        "actor": event.actor,
        "data": event.data,
    }


def audit_from_row(row: Row) -> AuditRecord:
    event = AuditEvent(
        type=row["type"],
        data=row["data"],
        session_id=row["session_id"],
        actor=row["actor"],
        ts=float(row["ts"]),
    )
    return AuditRecord(id=int(row["id"]), event=event)


def session_row(record: SessionRecord) -> dict[str, Any]:
    """Every field of the record, one column each (the ``sessions`` table's columns are
    the record's field names)."""
    row = {name: getattr(record, name) for name in SESSION_FIELDS}
    row["overrides"] = dict(record.overrides)
    return row


def session_from_row(row: Row) -> SessionRecord:
    values = {name: row[name] for name in SESSION_FIELDS}
    values["overrides"] = dict(values["overrides"] or {})
    return SessionRecord(**values)


def turn_from_row(row: Row) -> QueuedTurn:
    return QueuedTurn(
        turn_id=row["turn_id"],
        session_id=row["session_id"],
        prompt=row["prompt"],
        request_id=row["request_id"],
        user=row["user"],
        state=cast(TurnState, row["state"]),
        created_at=float(row["created_at"]),
        started_at=None if row["started_at"] is None else float(row["started_at"]),
    )


def approval_row(request: ApprovalRequest) -> dict[str, Any]:
    return {
        "permission_id": request.permission_id,
        "kind": request.kind,
        "session_id": request.session_id,
        "address": request.address,
        "tool": request.tool,
        "input": dict(request.input),
        "reason": request.reason,
        "scopes": list(request.scopes),
        "approvers": list(request.approvers),
        "created_at": request.created_at,
        "expires_at": request.expires_at,
    }


def approval_from_row(row: Row) -> ApprovalRecord:
    request = ApprovalRequest(
        permission_id=row["permission_id"],
        kind=row["kind"],
        session_id=row["session_id"],
        address=row["address"],
        tool=row["tool"],
        input=dict(row["input"]),
        reason=row["reason"],
        scopes=tuple(row["scopes"]),
        approvers=tuple(row["approvers"]),
        created_at=float(row["created_at"]),
        expires_at=float(row["expires_at"]),
    )
    return ApprovalRecord(
        request=request,
        decision=row["decision"],
        decided_by=row["decided_by"],
        scope=row["scope"],
        decided_at=None if row["decided_at"] is None else float(row["decided_at"]),
    )


def inbound_payload(message: IncomingMessage) -> dict[str, Any]:
    """Everything needed to rebuild the IncomingMessage after a restart (an attachment
    keeps its description; its download cannot be stored)."""
    return {
        "address": message.address,
        "text": message.text,
        "user": message.user,
        "platform": message.platform,
        "event_id": message.event_id,
        "message_key": message.message_key,
        "attachments": [
            {"name": a.name, "size": a.size, "mime": a.mime, "kind": a.kind, "url": a.url}
            for a in message.attachments
        ],
        "received_at": message.received_at,
        "raw": None if message.raw is None else dict(message.raw),
        "ref": None if message.ref is None else [message.ref.address, message.ref.message_id],
        "direct": message.direct,
        "mentions_bot": message.mentions_bot,
        "from_bot": message.from_bot,
        "display_name": message.display_name,
    }


def _attachment(item: Mapping[str, Any]) -> Attachment:
    size = item.get("size")
    return Attachment(
        name=str(item.get("name") or "attachment"),
        size=None if size is None else int(size),
        mime=item.get("mime"),
        kind="image" if item.get("kind") == "image" else "file",
        url=item.get("url"),
    )


def message_from_payload(payload: Row) -> IncomingMessage:
    ref = payload.get("ref")
    return IncomingMessage(
        address=payload["address"],
        text=payload["text"],
        user=payload["user"],
        platform=payload["platform"],
        event_id=payload.get("event_id"),
        message_key=payload.get("message_key"),
        attachments=tuple(_attachment(a) for a in payload.get("attachments") or ()),
        received_at=float(payload["received_at"]),
        raw=payload.get("raw"),
        ref=None if not ref else MessageRef(address=ref[0], message_id=ref[1]),
        direct=bool(payload.get("direct", False)),
        mentions_bot=bool(payload.get("mentions_bot", False)),
        from_bot=bool(payload.get("from_bot", False)),
        display_name=payload.get("display_name"),
    )
