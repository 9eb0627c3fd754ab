"""A WAF ``ask`` on a prompt: decided like a tool call, without holding up anyone else.

The request is published at once as a ``permission_request`` with ``kind: prompt`` (``tool:
prompt``, ``input: {text}``, scope ``once``) on the stream of the session the prompt is
for: it belongs to no turn (empty ``turn_id``) and carries the message's ``request_id``.
Subscribers of the session see it, and so does the sender through the ``on_event`` fact
(the gateway's execute sets it). A person answers through the same entry point as a tool
approval (:meth:`~hotplex.engine.approvals.Approvals.decide`); the ``permission_decision``
follows on the same stream; nobody deciding within ``security.approval_timeout`` denies.

An unattended session (an ``unattended`` fact, or the policy an earlier ``execute`` gave
the session) applies its policy instead of waiting for a person who is not there: ``deny``
refuses at once, ``{allow_tools: [...]}`` lets the prompt through when the list names
``prompt`` (and refuses it otherwise), ``{route_to: ...}`` asks in that conversation.

The inbound-chain facts read here: ``request_id`` (str), ``on_event`` (a callable taking
each :class:`~hotplex.events.AgentEvent` published about the message) and ``unattended``
(an :data:`~hotplex.config.UnattendedPolicy`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hotplex.config import UnattendedPolicy
from hotplex.engine.approvals import ADMIN, Decision
from hotplex.events import AgentEvent, agent_event
from hotplex.interfaces import MiddlewareContext

if TYPE_CHECKING:
    from hotplex.engine import Engine

__all__ = ["PromptDecision", "ask_prompt", "unattended_answer"]

#: The approval's ``tool`` and the allow_tools entry that lets asked prompts through.
PROMPT_TOOL = "prompt"
#: How much of the prompt the request shows.
SHOWN_TEXT = 2000

OnEvent = Callable[[AgentEvent], Any]


@dataclass(frozen=True, slots=True)
class PromptDecision:
    """Whether the asked prompt goes to the agent, who said so, and why not."""

    allowed: bool
    by: str | None
    reason: str | None = None


def unattended_answer(policy: UnattendedPolicy | None) -> PromptDecision | None:
    """The answer of an unattended policy without a person (None: ask one)."""
    if policy is None or hasattr(policy, "route_to"):
        return None
    if policy == "deny":
        return PromptDecision(False, None, "this session is unattended (policy: deny)")
    allowed = PROMPT_TOOL in getattr(policy, "allow_tools", ())
    if allowed:
        return PromptDecision(True, "policy")
    return PromptDecision(False, None, "prompt is not in this unattended session's allow_tools")


async def ask_prompt(
    engine: Engine,
    ctx: MiddlewareContext,
    *,
    reason: str,
    approvers: Collection[str],
) -> PromptDecision:
    """Ask about ``ctx.message`` (see the module docstring); returns the outcome."""
    message = ctx.message
    key = message.address
    session_id = engine.session_id(key)
    policy = ctx.facts.get("unattended") or engine.unattended_policy(session_id)
    answer = unattended_answer(policy)
    if answer is not None:
        return answer
    route_to = getattr(policy, "route_to", None)
    request_id = ctx.facts.get("request_id")
    on_event: OnEvent | None = ctx.facts.get("on_event")

    async def post(event: AgentEvent) -> None:
        stamped = await engine.post(
            key, event, address=message.address, user=message.user, request_id=request_id
        )
        if on_event is not None:
            on_event(stamped)

    request = await engine.approvals.open(
        kind="prompt",
        session_id=session_id,
        address=route_to or message.address,
        tool=PROMPT_TOOL,
        input={"text": message.text[:SHOWN_TEXT]},
        reason=reason,
        approvers=approvers,
        scopes=("once",),
    )
    try:
        await post(
            agent_event(
                "permission_request",
                permission_id=request.permission_id,
                kind="prompt",
                tool=PROMPT_TOOL,
                input=dict(request.input),
                reason=reason,
                scopes=list(request.scopes),
            )
        )
        decision = await engine.approvals.wait(request)
    except asyncio.CancelledError:  # the sender went away: the prompt is denied
        with contextlib.suppress(Exception):  # (already, when the wait had begun)
            await engine.approvals.decide(
                request.permission_id, "deny", by=ADMIN, reason="cancelled"
            )
        with contextlib.suppress(Exception):
            await asyncio.shield(post(_decided(request.permission_id, _cancelled())))
        raise
    await post(_decided(request.permission_id, decision))
    if decision.decision == "allow":
        return PromptDecision(True, decision.by)
    return PromptDecision(False, None, decision.reason or f"denied by {decision.by}")


def _cancelled() -> Decision:
    return Decision("deny", "once", "system", "cancelled")


def _decided(permission_id: str, decision: Decision) -> AgentEvent:
    data: dict[str, Any] = {
        "permission_id": permission_id,
        "decision": decision.decision,
        "scope": decision.scope,
        "by": decision.by,
    }
    if decision.reason:
        data["reason"] = decision.reason
    return agent_event("permission_decision", **data)
