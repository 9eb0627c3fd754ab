"""The WAF applied twice: to every inbound prompt (a middleware) and to every tool call (a
policy in the engine's chain, which sees read-only calls too through the PreToolUse hook).

Every verdict other than a plain allow is a ``waf.verdict`` audit event (rule id, level,
action, span, and for ``ask`` who approved).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from hotplex.context import PluginContext, ServiceKey
from hotplex.engine.policy import PolicyVerdict, ToolCall
from hotplex.events import AuditEvent
from hotplex.interfaces import Middleware, MiddlewareContext, Next
from hotplex.waf.asks import PromptDecision, ask_prompt
from hotplex.waf.engine import Waf
from hotplex.waf.model import Verdict, WafInputError

__all__ = [
    "WAF",
    "WafMiddleware",
    "WafToolPolicy",
    "make_waf",
    "make_waf_middleware",
    "verdict_audit",
]

log = logging.getLogger(__name__)

Emit = Callable[[AuditEvent], Awaitable[None]]

#: The runtime's WAF.
WAF = ServiceKey("waf", Waf)


def verdict_audit(
    verdict: Verdict, *, where: str, session_id: str | None, actor: str | None, **extra: Any
) -> AuditEvent:
    data: dict[str, Any] = {
        "where": where,
        "action": verdict.action,
        "rule_id": verdict.rule_id,
        "category": verdict.category,
        "level": verdict.level,
        "description": verdict.description,
        "span": list(verdict.span) if verdict.span else None,
        "matched": verdict.matched,
        **extra,
    }
    return AuditEvent("waf.verdict", data, session_id=session_id, actor=actor)


def refusal(verdict: Verdict) -> str:
    return f"Blocked by WAF rule {verdict.rule_id}: {verdict.description}"


class WafToolPolicy:
    """Policy-chain member: block denies the call with the rule as the reason the agent
    sees, ask makes a person decide, warn passes (audited)."""

    name = "waf"

    def __init__(self, waf: Waf, emit: Emit | None) -> None:
        self._waf = waf
        self._emit = emit

    async def check(self, call: ToolCall) -> PolicyVerdict | None:
        request = call.request
        try:
            verdict = self._waf.check_tool(request.tool, request.input, work_dir=call.work_dir)
        except WafInputError as exc:
            return PolicyVerdict("deny", str(exc), rule="waf.input")
        if verdict.action != "allow" and request.stage == "pre" and self._emit is not None:
            await self._emit(
                verdict_audit(
                    verdict,
                    where="tool",
                    session_id=call.session_id,
                    actor="agent",
                    tool=request.tool,
                )
            )
        if verdict.action == "block":
            return PolicyVerdict("deny", verdict.description or "dangerous", verdict.rule_id)
        if verdict.action == "ask":
            return PolicyVerdict("ask", verdict.description or "", verdict.rule_id)
        return None


class WafMiddleware(Middleware):
    """Inbound prompts: block answers with the rule, ask waits for a person's approval
    (a prompt-kind ApprovalRequest published as a ``permission_request``, see asks.py) or
    applies the session's unattended policy, warn passes and is audited."""

    def __init__(self, ctx: PluginContext, waf: Waf) -> None:
        self._ctx = ctx
        self._waf = waf

    async def _audit(self, event: AuditEvent) -> None:
        from hotplex.runtime import RUNTIME

        runtime = self._ctx.services.find(RUNTIME)
        if runtime is not None:
            await runtime.emit(event)

    async def process(self, ctx: MiddlewareContext, call_next: Next) -> None:
        message = ctx.message
        try:
            verdict = self._waf.check_prompt(message.text)
        except WafInputError as exc:
            ctx.reply = str(exc)
            return
        if verdict.action == "allow":
            await call_next(ctx)
            return
        from hotplex.engine import ENGINE

        engine = self._ctx.services.find(ENGINE)
        session_id = engine.session_id(message.address) if engine is not None else None
        if verdict.action == "block":
            await self._audit(
                verdict_audit(verdict, where="prompt", session_id=session_id, actor=message.user)
            )
            ctx.reply = refusal(verdict)
            return
        if verdict.action == "ask":
            outcome = await self._ask(ctx, verdict)
            await self._audit(
                verdict_audit(
                    verdict,
                    where="prompt",
                    session_id=session_id,
                    actor=message.user,
                    approved_by=outcome.by if outcome.allowed else None,
                )
            )
            if not outcome.allowed:
                why = f": {outcome.reason}" if outcome.reason else ""
                ctx.reply = f"{refusal(verdict)} (approval was not given{why})"
                return
        else:
            await self._audit(
                verdict_audit(verdict, where="prompt", session_id=session_id, actor=message.user)
            )
        await call_next(ctx)

    async def _ask(self, ctx: MiddlewareContext, verdict: Verdict) -> PromptDecision:
        """A person (or the session's unattended policy) decides whether the prompt goes
        to the agent; the request is on the session's event stream meanwhile (asks.py)."""
        from hotplex.engine import ENGINE

        engine = self._ctx.services.find(ENGINE)
        if engine is None:
            return PromptDecision(False, None, "no engine to ask through")
        return await ask_prompt(
            engine,
            ctx,
            reason=f"{verdict.rule_id}: {verdict.description}",
            approvers=self._ctx.settings.security.approvers or (ctx.message.user,),
        )


class _Off(Middleware):
    async def process(self, ctx: MiddlewareContext, call_next: Next) -> None:
        await call_next(ctx)


def make_waf_middleware(ctx: PluginContext) -> Middleware:
    """The prompt WAF, or a pass-through when ``security.waf.enabled`` is false."""
    if not ctx.settings.security.waf.enabled:
        return _Off()
    return WafMiddleware(ctx, make_waf(ctx))


def make_waf(ctx: PluginContext) -> Waf:
    """The configured WAF, built once per runtime (service ``WAF``)."""
    waf = ctx.services.find(WAF)
    if waf is None:
        waf = Waf.from_settings(ctx.settings.security.waf)
        ctx.services.set(WAF, waf)
    return waf
