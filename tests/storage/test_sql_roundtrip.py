"""Round trips of every Storage method, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import text

from hotplex.errors import StorageError
from hotplex.events import AgentEvent, AuditEvent, agent_event
from hotplex.interfaces import Storage
from hotplex.storage import SessionRecord
from hotplex.storage import rows as rows_module
from hotplex.storage.sql import SqlStorage
from hotplex.types import ApprovalRequest, Attachment, IncomingMessage, MessageRef

SAMPLES: list[AgentEvent] = [
    agent_event("session", state="started"),
    agent_event("thinking", text="hmm… 🤔"),
    agent_event("text", text="héllo\nworld"),
    agent_event("tool_use", tool_use_id="tu1", name="Bash", input={"command": "ls -la", "n": 3}),
    agent_event("tool_result", tool_use_id="tu1", output=["a", {"b": None}], is_error=False),
    agent_event(
        "permission_request",
        permission_id="p1",
        tool="Bash",
        input={"command": "rm x"},
        scopes=["once", "session"],
        reason="writes",
    ),
    agent_event("permission_decision", permission_id="p1", decision="allow", scope="once", by="u1"),
    agent_event(
        "usage",
        input_tokens=10,
        output_tokens=20,
        cache_read_tokens=0,
        cache_write_tokens=5,
        cost_usd=0.0123,
        context_used=1234,
        context_window=200000,
    ),
    agent_event("status", text="compacting"),
    agent_event("error", code="rate_limited", message="slow down", retryable=True),
    agent_event("done", status="ok", duration_ms=1500),
]


def stamp(event: AgentEvent, seq: int, session: str = "s1", **kw: Any) -> AgentEvent:
    return event.stamped(
        session_id=session, turn_id=kw.get("turn", "turn_1"), seq=seq, request_id=kw.get("req")
    )


def message(**kw: Any) -> IncomingMessage:
    fields: dict[str, Any] = {
        "address": "slack:T1/C2/1700.1",
        "text": "do it",
        "user": "U1",
        "platform": "slack",
    }
    fields.update(kw)
    return IncomingMessage(**fields)


def approval(pid: str = "p1", **kw: Any) -> ApprovalRequest:
    fields: dict[str, Any] = {
        "permission_id": pid,
        "kind": "tool",
        "session_id": "s1",
        "address": "web:default/s1",
        "tool": "Bash",
        "input": {"command": "rm -rf build", "nested": {"a": [1, 2]}},
        "reason": "deletes files",
        "scopes": ("once", "session"),
        "approvers": ("U1", "U2"),
        "created_at": 1000.5,
        "expires_at": 1300.5,
    }
    fields.update(kw)
    return ApprovalRequest(**fields)


# -- lifecycle ---------------------------------------------------------------------------


async def test_open_twice_close_twice_ping_and_integrity(db_url: str) -> None:
    store = SqlStorage(db_url)
    assert isinstance(store, Storage)
    with pytest.raises(StorageError, match="not open"):
        await store.ping()
    await store.open()
    await store.open()
    await store.ping()
    assert await store.integrity_check() == []
    await store.close()
    await store.close()
    with pytest.raises(StorageError):
        await store.read_events("s1")


async def test_unreachable_backend_raises_storage_error(backend: str, tmp_path: Any) -> None:
    if backend == "sqlite":
        blocker = tmp_path / "file"
        blocker.write_text("not a folder")
        url = f"sqlite+aiosqlite:///{blocker}/sub/hotplex.db"
    else:
        url = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"
    store = SqlStorage(url)
    with pytest.raises(StorageError, match="cannot open storage"):
        await asyncio.wait_for(store.open(), timeout=20)


# -- events ------------------------------------------------------------------------------


async def test_events_round_trip_equal_to_dict(storage: SqlStorage) -> None:
    stamped = [stamp(e, i + 1, req="req_1" if i % 2 else None) for i, e in enumerate(SAMPLES)]
    await storage.append_batch(stamped, ())
    got = await storage.read_events("s1")
    assert [e.to_dict() for e in got] == [e.to_dict() for e in stamped]
    assert [AgentEvent.from_dict(e.to_dict()) for e in got] == got


async def test_read_events_since_seq_limit_gaps_and_sessions(storage: SqlStorage) -> None:
    await storage.append_batch(
        [stamp(agent_event("status", text=str(s)), s) for s in (1, 2, 5)], ()
    )
    await storage.append_batch([stamp(agent_event("status", text="b"), 1, session="s2")], ())
    assert [e.seq for e in await storage.read_events("s1")] == [1, 2, 5]
    assert [e.seq for e in await storage.read_events("s1", since_seq=2)] == [5]
    assert [e.seq for e in await storage.read_events("s1", since_seq=3)] == [5]
    assert [e.seq for e in await storage.read_events("s1", limit=2)] == [1, 2]
    assert await storage.read_events("s1", since_seq=5) == []
    assert await storage.read_events("nobody") == []
    assert [e.data["text"] for e in await storage.read_events("s2")] == ["b"]


async def test_existing_seq_is_kept_not_overwritten(storage: SqlStorage) -> None:
    await storage.append_batch([stamp(agent_event("text", text="first"), 1)], ())
    await storage.append_batch(
        [stamp(agent_event("text", text="again"), 1), stamp(agent_event("text", text="two"), 2)], ()
    )
    assert [e.data["text"] for e in await storage.read_events("s1")] == ["first", "two"]


async def test_nul_characters_and_lone_surrogates(storage: SqlStorage) -> None:
    await storage.append_batch([stamp(agent_event("text", text="a\x00b"), 1)], ())
    await storage.accept_turn("s1", "t1", "pr\x00ompt")
    # a lone surrogate (e.g. from "\\ud800" in the CLI's JSON) cannot be encoded as UTF-8
    await storage.append_batch([stamp(agent_event("text", text="x\ud800y"), 2)], ())
    await storage.accept_turn("s1", "t2", "p\udc80q")
    events = await storage.read_events("s1")
    turns = await storage.pending_turns()
    assert events[1].data["text"] == "x\ufffdy" and turns[1].prompt == "p\ufffdq"
    if storage.is_sqlite:
        assert events[0].data["text"] == "a\x00b" and turns[0].prompt == "pr\x00ompt"
    else:  # PostgreSQL text cannot hold NUL: it becomes U+FFFD rather than losing the event
        assert events[0].data["text"] == "a\ufffdb" and turns[0].prompt == "pr\ufffdompt"


async def test_append_batch_is_one_transaction(
    storage: SqlStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_audit_row(event: AuditEvent) -> dict[str, Any]:
        return {"type": None, "ts": event.ts, "session_id": None, "actor": None, "data": {}}

    monkeypatch.setattr(rows_module, "audit_row", broken_audit_row)
    with pytest.raises(StorageError):
        await storage.append_batch(
            [stamp(agent_event("text", text="x"), 1)],
            [AuditEvent(type="cron.run", data={})],
        )
    assert await storage.read_events("s1") == []
    monkeypatch.undo()
    await storage.append_batch(
        [stamp(agent_event("text", text="x"), 1)], [AuditEvent(type="cron.run", data={})]
    )
    assert len(await storage.read_events("s1")) == 1
    assert len(await storage.read_audit()) == 1


# -- sessions ----------------------------------------------------------------------------


async def test_sessions_save_get_load_upsert(storage: SqlStorage) -> None:
    record = SessionRecord(
        session_id="s1",
        key="slack:T1/C2",
        address="slack:T1/C2/1700.1",
        owner="U1",
        provider_session_id="prov-1",
        work_dir="/w/s1",
        state="running",
        agent_pid=4242,
        agent_pgid=4242,
        agent_start_time=123456789012,
        last_seq=77,
        turns=3,
        input_tokens=10_000_000_000,
        output_tokens=5,
        cost_usd=1.25,
        overrides={"model": "opus", "mode": None},
        running_turn_id="turn_abc",
        created_at=100.25,
        updated_at=200.5,
    )
    assert await storage.get_session("s1") is None
    await storage.save_session(record)
    assert await storage.get_session("s1") == record
    later = SessionRecord(
        session_id="s1", key="slack:T1/C2", state="idle", created_at=999.0, updated_at=300.0
    )
    await storage.save_session(later)
    got = await storage.get_session("s1")
    assert got is not None
    assert got.state == "idle" and got.agent_pid is None and got.running_turn_id is None
    assert got.created_at == 100.25 and got.updated_at == 300.0  # first created_at kept
    await storage.save_session(SessionRecord(session_id="s0", key="k0", created_at=50.0))
    assert [r.session_id for r in await storage.load_sessions()] == ["s0", "s1"]


def test_session_record_rejects_unknown_state() -> None:
    with pytest.raises(ValueError, match="session state"):
        SessionRecord(session_id="s", key="k", state="bogus")  # type: ignore[arg-type]


# -- queued turns ------------------------------------------------------------------------


async def test_queued_turns_order_start_finish(storage: SqlStorage) -> None:
    for i in range(5):
        await storage.accept_turn(
            "s1" if i % 2 == 0 else "s2", f"t{i}", f"p{i}", request_id=f"r{i}", user="U1"
        )
    await storage.accept_turn("s1", "t0", "duplicate ignored")
    pending = await storage.pending_turns()
    assert [t.turn_id for t in pending] == ["t0", "t1", "t2", "t3", "t4"]
    assert pending[0].prompt == "p0" and pending[0].request_id == "r0" and pending[0].user == "U1"
    assert {t.state for t in pending} == {"queued"} and pending[0].started_at is None
    await storage.start_turn("t0")
    await storage.start_turn("t1")
    await storage.end_turn("t1", "ok")
    await storage.end_turn("t3", "interrupted")  # finished without having started
    pending = await storage.pending_turns()
    assert [(t.turn_id, t.state) for t in pending] == [
        ("t0", "started"),
        ("t2", "queued"),
        ("t4", "queued"),
    ]
    assert pending[0].started_at is not None
    assert [t.turn_id for t in await storage.pending_turns("s1")] == ["t0", "t2", "t4"]
    await storage.start_turn("t1")  # finished turns do not come back
    assert "t1" not in [t.turn_id for t in await storage.pending_turns()]


# -- approvals ---------------------------------------------------------------------------


async def test_approvals_request_then_first_decision_wins(storage: SqlStorage) -> None:
    request = approval()
    assert await storage.get_approval("p1") is None
    await storage.save_approval(request)
    await storage.save_approval(request)  # idempotent
    record = await storage.get_approval("p1")
    assert record is not None
    assert record.request == request and record.decision is None and record.decided_at is None
    await storage.save_approval(request, "allow", by="U2", scope="session")
    await storage.save_approval(request, "deny", by="U1", scope="once")
    record = await storage.get_approval("p1")
    assert record is not None
    assert (record.decision, record.decided_by, record.scope) == ("allow", "U2", "session")
    assert record.decided_at is not None
    # decided at once, without a prior request row
    prompt = approval("p2", kind="prompt", address=None, reason=None, approvers=())
    await storage.save_approval(prompt, "deny", by="system")
    got = await storage.get_approval("p2")
    assert got is not None and got.request == prompt and got.decision == "deny"


# -- audit -------------------------------------------------------------------------------


async def test_audit_filters_and_paging(storage: SqlStorage) -> None:
    kinds = ["session.created", "waf.verdict", "approval.requested", "cron.run"]
    batch = [
        AuditEvent(
            type=kinds[i % 4],
            data={"i": i},
            session_id=f"s{i % 2}",
            actor="admin" if i % 3 == 0 else None,
            ts=1000.0 + i,
        )
        for i in range(20)
    ]
    await storage.append_batch((), batch)
    newest = await storage.read_audit(limit=5)
    assert [r.event.data["i"] for r in newest] == [19, 18, 17, 16, 15]
    assert newest[0].event == batch[19]
    assert newest[0].to_dict()["id"] == newest[0].id
    page2 = await storage.read_audit(limit=5, before_id=newest[-1].id)
    assert [r.event.data["i"] for r in page2] == [14, 13, 12, 11, 10]
    every: list[int] = []
    before: int | None = None
    while page := await storage.read_audit(limit=7, before_id=before):
        every += [r.event.data["i"] for r in page]
        before = page[-1].id
    assert every == list(range(19, -1, -1))
    waf = await storage.read_audit(types=["waf.verdict"])
    assert [r.event.data["i"] for r in waf] == [17, 13, 9, 5, 1]
    mixed = await storage.read_audit(types={"waf.verdict", "cron.run"}, session_id="s1")
    assert [r.event.data["i"] for r in mixed] == [19, 17, 15, 13, 11, 9, 7, 5, 3, 1]
    recent = await storage.read_audit(since=1015.0, session_id="s0")
    assert [r.event.data["i"] for r in recent] == [18, 16]
    assert await storage.read_audit(types=[]) == []


# -- inbound -----------------------------------------------------------------------------


async def test_inbound_dedup_by_event_id_and_by_message_key(storage: SqlStorage) -> None:
    first = message(event_id="Ev1", message_key="slack:C2:1700.1")
    assert await storage.record_inbound(first) is True
    assert await storage.record_inbound(first) is False  # a retry of the same delivery
    assert await storage.record_inbound(message(event_id="Ev1")) is False  # same event id
    # same message delivered again under a new event id (e.g. socket mode and HTTP)
    again = message(event_id="Ev2", message_key="slack:C2:1700.1")
    assert await storage.record_inbound(again) is False
    assert await storage.record_inbound(message(message_key="slack:C2:1700.1")) is False
    assert await storage.record_inbound(message(event_id="Ev2", message_key="other")) is True
    # ids are per platform
    assert await storage.record_inbound(message(platform="feishu", event_id="Ev1")) is True
    # without any id nothing can be deduplicated
    anonymous = message()
    assert await storage.record_inbound(anonymous) is True
    assert await storage.record_inbound(message()) is True


async def test_inbound_dedup_is_race_free(storage: SqlStorage) -> None:
    by_event = message(event_id="EvRace")
    results = await asyncio.gather(*(storage.record_inbound(by_event) for _ in range(20)))
    assert sorted(results) == [False] * 19 + [True]
    by_key = [message(event_id=f"Ev{i}", message_key="slack:C2:race") for i in range(20)]
    results = await asyncio.gather(*(storage.record_inbound(m) for m in by_key))
    assert results.count(True) == 1
    assert len(await storage.pending_inbound()) == 2


async def test_pending_inbound_and_finish(storage: SqlStorage) -> None:
    a = message(
        text="first",
        event_id="Ev1",
        attachments=(Attachment("a.png", 3, "image/png", "image", url="https://x/a.png"),),
        raw={"event": {"ts": "1700.1", "blocks": [1, 2]}},
        received_at=1000.5,
        ref=MessageRef("slack:T1/C2/1700.1", "1700.1"),
        direct=True,
        mentions_bot=True,
        display_name="Ann",
    )
    b = message(text="second", message_key="k2", received_at=1001.0)
    c = message(text="third", received_at=1002.25)  # no ids at all
    for m in (a, b, c):
        assert await storage.record_inbound(m)
    assert await storage.pending_inbound() == [a, b, c]
    await storage.finish_inbound(b)
    assert await storage.pending_inbound() == [a, c]
    await storage.finish_inbound(c)
    await storage.finish_inbound(a)
    await storage.finish_inbound(a)  # idempotent
    assert await storage.pending_inbound() == []
    assert await storage.record_inbound(a) is False  # still deduplicated once done


# -- retention ---------------------------------------------------------------------------


async def test_prune_deletes_only_older_rows(storage: SqlStorage) -> None:
    now = time.time()
    old, new = now - 40 * 86400, now - 3600
    await storage.append_batch(
        [
            AgentEvent(type="text", data={"text": "old"}, session_id="s1", seq=1, ts=old),
            AgentEvent(type="text", data={"text": "new"}, session_id="s1", seq=2, ts=new),
        ],
        (),
    )
    await storage.append_batch(
        (),
        [
            AuditEvent(type="cron.run", data={}, ts=old),
            AuditEvent(type="cron.run", data={}, ts=new),
        ],
    )
    await storage.accept_turn("s1", "t_old", "p")
    await storage.end_turn("t_old", "ok")
    await storage.accept_turn("s1", "t_open", "p")
    await storage.record_inbound(message(event_id="done"))
    await storage.finish_inbound(message(event_id="done"))
    await storage.record_inbound(message(event_id="open"))
    session = SessionRecord(session_id="s1", key="k", created_at=old, updated_at=old)
    await storage.save_session(session)
    # finished turns and done inbound count as old only by when they finished
    assert await storage.prune(now - 30 * 86400) == 2
    assert [e.data["text"] for e in await storage.read_events("s1")] == ["new"]
    assert [r.event.ts for r in await storage.read_audit()] == [new]
    deleted = await storage.prune(time.time() + 1)
    assert deleted == 1 + 1 + 1 + 1  # event, audit, finished turn, done inbound
    assert [t.turn_id for t in await storage.pending_turns()] == ["t_open"]
    assert [m.event_id for m in await storage.pending_inbound()] == ["open"]
    assert await storage.get_session("s1") == session  # sessions are never pruned
    assert await storage.record_inbound(message(event_id="done")) is True  # forgotten


async def test_prune_in_chunks(storage: SqlStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    from hotplex.storage import sql

    monkeypatch.setattr(sql, "PRUNE_CHUNK", 7)
    batch = [
        AgentEvent(type="status", data={"text": "x"}, session_id="s", seq=i, ts=10.0)
        for i in range(1, 51)
    ]
    await storage.append_batch(batch, ())
    await storage.append_batch((), [AuditEvent(type="cron.run", data={}, ts=10.0)] * 15)
    assert await storage.prune(11.0) == 65
    assert await storage.read_events("s") == [] and await storage.read_audit() == []


async def test_forget_session_deletes_its_record_events_and_turns_only(
    storage: SqlStorage,
) -> None:
    for sid in ("s1", "s2"):
        await storage.save_session(SessionRecord(session_id=sid, key=f"k-{sid}"))
        await storage.append_batch(
            [stamp(agent_event("status", text=sid), 1, session=sid)],
            [AuditEvent("cron.run", {"job": sid}, session_id=sid)],
        )
        await storage.accept_turn(sid, f"t-{sid}", "hello")
        await storage.end_turn(f"t-{sid}", "ok")
    assert await storage.forget_session("s1") is True
    assert await storage.get_session("s1") is None
    assert await storage.read_events("s1") == []
    assert await storage.forget_session("s1") is False
    # the other session is untouched, and the audit of both stays
    assert await storage.get_session("s2") is not None
    assert [e.data["text"] for e in await storage.read_events("s2")] == ["s2"]
    assert len(await storage.read_audit(types={"cron.run"})) == 2
    async with storage.read() as conn:
        left = (await conn.execute(text("SELECT session_id FROM turns"))).scalars().all()
    assert left == ["s2"]
