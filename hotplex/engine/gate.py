"""The engine's tool gate: every tool call of an agent passes the policy chain, then, when
the CLI wants to ask, the session's unattended policy or a person (docs/engine.md,
"Approvals and the policy chain")."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from hotplex import interfaces
from hotplex.config import Settings, UnattendedPolicy
from hotplex.engine.approvals import ANYONE, Approvals
from hotplex.engine.policy import PolicyChain, SessionGrants, ToolCall
from hotplex.engine.publisher import Publisher
from hotplex.engine.session import Session
from hotplex.events import agent_event
from hotplex.tool_names import canonical_tool_name
from hotplex.types import ToolDecision, ToolRequest

__all__ = ["ToolGate"]


class ToolGate:
    """The gate each agent gets (:meth:`for_session`): the policy chain, then the session's
    unattended policy (``unattended``, by session id) or a person through ``approvals``."""

    def __init__(
        self,
        settings: Settings,
        *,
        approvals: Approvals,
        policy: PolicyChain,
        grants: SessionGrants,
        unattended: Mapping[str, UnattendedPolicy | None],
        publisher: Publisher,
    ) -> None:
        self._approvers = settings.security.approvers
        self._approvals = approvals
        self._policy = policy
        self._grants = grants
        self._unattended = unattended
        self._publisher = publisher

    def for_session(self, session: Session) -> interfaces.ToolGate:
        async def gate(request: ToolRequest) -> ToolDecision:
            return await self._gate(session, request)

        return gate

    async def _gate(self, session: Session, request: ToolRequest) -> ToolDecision:
        call = ToolCall(session.session_id, session.address, session.work_dir, request)
        verdict = await self._policy.check(call)
        if verdict is not None and verdict.action == "deny":
            reason = f"{verdict.rule}: {verdict.reason}" if verdict.rule else verdict.reason
            return ToolDecision("deny", message=reason or "denied by policy")
        if verdict is not None and verdict.action == "allow":
            return ToolDecision("allow")
        if request.stage == "pre":
            return ToolDecision("ask") if verdict is not None else ToolDecision("defer")
        return await self._ask_person(session, request, verdict.reason if verdict else None)

    async def _ask_person(
        self, session: Session, request: ToolRequest, reason: str | None
    ) -> ToolDecision:
        policy = self._unattended.get(session.session_id)
        address = session.address
        if policy == "deny":
            return ToolDecision(
                "deny",
                message="Tool calls need approval, and this session is unattended (policy: deny).",
            )
        if policy is not None and hasattr(policy, "allow_tools"):
            if canonical_tool_name(request.tool) in map(canonical_tool_name, policy.allow_tools):
                return ToolDecision("allow")
            return ToolDecision(
                "deny", message=f"{request.tool} is not in this unattended session's allow_tools."
            )
        if policy is not None and hasattr(policy, "route_to"):
            address = policy.route_to
        approvers = self._approvers or ((session.owner,) if session.owner else (ANYONE,))
        approval = await self._approvals.open(
            kind="tool",
            session_id=session.session_id,
            address=address,
            tool=request.tool,
            input=request.input,
            reason=reason or request.reason,
            approvers=approvers,
        )
        turn = session.current
        if turn is not None:
            turn.pending_permissions += 1
        try:
            await self._publisher.publish(
                session,
                agent_event(
                    "permission_request",
                    permission_id=approval.permission_id,
                    kind="tool",
                    tool=request.tool,
                    input=dict(request.input),
                    reason=approval.reason or "",
                    scopes=list(approval.scopes),
                ),
            )
            decision = await self._approvals.wait(approval)
        finally:
            if turn is not None:
                turn.pending_permissions -= 1
                turn.last_activity = time.monotonic()
        data: dict[str, Any] = {
            "permission_id": approval.permission_id,
            "decision": decision.decision,
            "scope": decision.scope,
            "by": decision.by,
        }
        if decision.reason:
            data["reason"] = decision.reason
        await self._publisher.publish(session, agent_event("permission_decision", **data))
        if decision.decision == "allow":
            if decision.scope == "session":
                self._grants.grant(session.session_id, request)
            return ToolDecision("allow")
        return ToolDecision("deny", message=decision.reason or f"denied by {decision.by}")
