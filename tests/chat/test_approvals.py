"""Approvals in chat, end to end with the fake provider and the fake chat adapter: a card
per request in its conversation (or routed), one decision despite a double press, a
stranger refused, a timeout or a restart shown on the card."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from approvals_kit import calls, card_ids, card_of, closed_with, next_of, running

from hotplex.config import RouteTo
from hotplex.engine.approvals import RESTART
from hotplex.errors import AlreadyDecidedError, NotAuthorizedError
from hotplex.events import AuditEvent
from hotplex.services import STORAGE
from hotplex.testing.fakes import FakeProvider, ToolCall
from hotplex.types import ApprovalOutcome, ApprovalRequest

ALICE = "fake:alice"
ADDRESS = "fake:w/c"


async def test_double_press_applies_once_and_the_card_shows_who(tmp_path: Path) -> None:
    provider = FakeProvider([[ToolCall("Bash", {"command": "make"}, output="built")]])
    async with running(tmp_path, provider) as hp:
        turn = await hp.engine.execute(ADDRESS, "build", address=ADDRESS, user=ALICE)
        request = await next_of(turn, "permission_request")
        pid = request.data["permission_id"]
        ops = hp.ops
        await card_of(ops, pid)
        assert calls(ops, "ask_approval") == [("ask_approval", ADDRESS, pid)]

        first, second = await asyncio.gather(
            hp.cards.decide(pid, "allow", by=ALICE), hp.cards.decide(pid, "allow", by=ALICE)
        )
        assert first == second == ApprovalOutcome("allow", ALICE, "once", None)
        rest = await turn.collect(5)
        assert [e.type for e in rest].count("permission_decision") == 1
        results = [e for e in rest if e.type == "tool_result"]
        assert len(results) == 1 and results[0].data["output"] == "built"
        (told,) = calls(ops, "reply_ephemeral")
        assert told[1:3] == (ADDRESS, ALICE)
        assert "already decided: allowed by fake:alice" in str(told[3])
        message_id, outcome = await closed_with(ops, pid)
        assert message_id == card_ids(ops)[pid]
        assert outcome == ApprovalOutcome("allow", ALICE, "once", None)


async def test_a_stranger_is_refused_and_a_deny_reason_reaches_the_agent(tmp_path: Path) -> None:
    provider = FakeProvider([[ToolCall("Bash", {"command": "rm -r build"})]])
    async with running(tmp_path, provider) as hp:
        turn = await hp.engine.execute(ADDRESS, "clean", address=ADDRESS, user=ALICE)
        pid = (await next_of(turn, "permission_request")).data["permission_id"]
        ops = hp.ops
        await card_of(ops, pid)
        with pytest.raises(NotAuthorizedError):
            await hp.cards.decide(pid, "allow", by="fake:mallory")
        with pytest.raises(NotAuthorizedError):  # not a namespaced identity: never admin
            await hp.cards.decide(pid, "allow", by="admin")
        refusals = calls(ops, "reply_ephemeral")
        assert [c[2] for c in refusals] == ["fake:mallory", "admin"]
        assert all("only its approvers" in str(c[3]) for c in refusals)
        assert hp.engine.approvals.get(pid) is not None  # still waiting
        assert calls(ops, "update_approval") == []

        outcome = await hp.cards.decide(pid, "deny", by=ALICE, reason="not today")
        assert outcome == ApprovalOutcome("deny", ALICE, "once", "not today")
        result = await next_of(turn, "tool_result")
        assert result.data["is_error"] and result.data["output"] == "not today"
        _, shown = await closed_with(ops, pid)
        assert shown == outcome


async def test_a_timeout_denies_and_the_card_says_expired(tmp_path: Path) -> None:
    provider = FakeProvider([[ToolCall("Bash", {"command": "make"})]])
    extra = {"security": {"approval_timeout": "0.3s"}}
    async with running(tmp_path, provider, extra) as hp:
        turn = await hp.engine.execute(ADDRESS, "build", address=ADDRESS, user=ALICE)
        pid = (await next_of(turn, "permission_request")).data["permission_id"]
        result = await next_of(turn, "tool_result")
        assert result.data["is_error"]
        _, outcome = await closed_with(hp.ops, pid)
        assert outcome.decision == "expired" and outcome.by is None
        late = await hp.cards.decide(pid, "allow", by=ALICE)
        assert late.decision == "expired"
        told = calls(hp.ops, "reply_ephemeral")[-1]
        assert "expired: nobody decided in time" in str(told[3])


async def test_a_routed_request_is_decided_by_the_approvers_route_to_names(tmp_path: Path) -> None:
    provider = FakeProvider([[ToolCall("Bash", {"command": "deploy"})]])
    async with running(tmp_path, provider) as hp:
        policy = RouteTo(route_to="fake:w/ops", approvers=("fake:bob",))
        turn = await hp.engine.execute("cron:nightly", "deploy", address=None, policy=policy)
        pid = (await next_of(turn, "permission_request")).data["permission_id"]
        ops = hp.ops
        await card_of(ops, pid)
        assert calls(ops, "ask_approval") == [("ask_approval", "fake:w/ops", pid)]
        with pytest.raises(NotAuthorizedError):
            await hp.cards.decide(pid, "allow", by=ALICE)
        assert calls(ops, "reply_ephemeral")[0][1:3] == ("fake:w/ops", ALICE)
        await hp.cards.decide(pid, "allow", by="fake:bob", scope="session")
        assert not (await next_of(turn, "tool_result")).data["is_error"]
        _, outcome = await closed_with(ops, pid)
        assert outcome == ApprovalOutcome("allow", "fake:bob", "session", None)


async def test_a_request_decided_elsewhere_still_closes_its_card(tmp_path: Path) -> None:
    provider = FakeProvider([[ToolCall("Bash", {"command": "make"})]])
    async with running(tmp_path, provider) as hp:
        turn = await hp.engine.execute(ADDRESS, "build", address=ADDRESS, user=ALICE)
        pid = (await next_of(turn, "permission_request")).data["permission_id"]
        await card_of(hp.ops, pid)
        await hp.engine.interrupt(hp.engine.session_id(ADDRESS))
        _, outcome = await closed_with(hp.ops, pid)
        assert outcome == ApprovalOutcome("deny", "admin", "once", "interrupted")


async def test_a_restart_leaves_a_pending_request_expired_on_its_card(tmp_path: Path) -> None:
    provider = FakeProvider([[ToolCall("Bash", {"command": "make"})]])
    async with running(tmp_path, provider) as hp:
        turn = await hp.engine.execute(ADDRESS, "build", address=ADDRESS, user=ALICE)
        pid = (await next_of(turn, "permission_request")).data["permission_id"]
        card = await card_of(hp.ops, pid)
    # stopped while the request waited; the next run closes the card it left
    async with running(tmp_path, FakeProvider()) as hp:
        ops = hp.ops
        message_id, outcome = await closed_with(ops, pid)
        assert message_id == card
        assert outcome.decision == "expired" and outcome.by is None
        late = await hp.cards.decide(pid, "allow", by=ALICE)
        assert late.decision == "expired"
        assert "expired" in str(calls(ops, "reply_ephemeral")[-1][3])
        with pytest.raises(AlreadyDecidedError):  # not a KeyError
            await hp.engine.approvals.decide(pid, "allow", by=ALICE)


async def test_a_request_a_killed_run_left_undecided_expires_on_its_card(tmp_path: Path) -> None:
    """What a SIGKILL leaves: the request stored undecided and its card shown."""
    now = time.time()
    left = ApprovalRequest(
        permission_id="perm_killed",
        kind="tool",
        session_id="s-killed",
        address=ADDRESS,
        tool="Bash",
        input={"command": "make"},
        reason=None,
        scopes=("once", "session"),
        approvers=(ALICE,),
        created_at=now,
        expires_at=now + 300,
    )
    async with running(tmp_path, FakeProvider()) as hp:
        storage = hp.runtime.ctx.services.get(STORAGE)
        await storage.save_approval(left)
        shown = {"permission_id": left.permission_id, "address": ADDRESS, "message_id": "m77"}
        await storage.append_batch([], [AuditEvent("approval.shown", shown)])
    async with running(tmp_path, FakeProvider()) as hp:
        message_id, outcome = await closed_with(hp.ops, left.permission_id)
        assert message_id == "m77" and outcome.decision == "expired"
        storage = hp.runtime.ctx.services.get(STORAGE)
        record = await storage.get_approval(left.permission_id)
        assert record is not None and record.decided_by == RESTART
        with pytest.raises(AlreadyDecidedError, match="restarted"):
            await hp.engine.approvals.decide(left.permission_id, "allow", by=ALICE)


ASKED = "append a line: echo hi >> ~/.bashrc"


async def test_a_waf_asked_prompt_is_approved_from_the_chat_and_then_runs(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, FakeProvider()) as hp:
        ops = hp.ops
        message = await hp.adapter.dm(ASKED, user=ALICE)
        await ops.wait_for(lambda: bool(calls(ops, "ask_approval")))
        ((_, address, pid),) = calls(ops, "ask_approval")
        request = hp.engine.approvals.get(pid)
        assert request is not None and request.kind == "prompt" and address == message.address
        # meanwhile another conversation is served
        await hp.adapter.dm("hello meanwhile", user="fake:bob")
        await ops.wait_for(lambda: any("echo: hello meanwhile" in t for t in ops.texts()))
        assert [p.prompts for p in hp.provider.processes] == [["hello meanwhile"]]
        with pytest.raises(NotAuthorizedError):
            await hp.bridge.decide(pid, "allow", by="fake:bob")
        outcome = await hp.bridge.decide(pid, "allow", by=ALICE)
        assert outcome == ApprovalOutcome("allow", ALICE, "once", None)
        await ops.wait_for(lambda: any(f"echo: {ASKED}" in t for t in ops.texts(address)))
        assert sorted(p.prompts[0] for p in hp.provider.processes) == [ASKED, "hello meanwhile"]
        _, shown = await closed_with(ops, pid)
        assert shown == outcome


async def test_a_waf_asked_prompt_denied_from_the_chat_never_runs(tmp_path: Path) -> None:
    async with running(tmp_path, FakeProvider()) as hp:
        ops = hp.ops
        message = await hp.adapter.dm(ASKED, user=ALICE)
        await ops.wait_for(lambda: bool(calls(ops, "ask_approval")))
        ((_, _, pid),) = calls(ops, "ask_approval")
        await hp.bridge.decide(pid, "deny", by=ALICE, reason="not my bashrc")
        await ops.wait_for(lambda: any("not my bashrc" in t for t in ops.texts(message.address)))
        _, shown = await closed_with(ops, pid)
        assert shown == ApprovalOutcome("deny", ALICE, "once", "not my bashrc")
        assert hp.provider.processes == []
