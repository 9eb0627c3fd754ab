"""OpenCode's permission requests put to HotPlex's gate: each ``permission.asked`` of a
session is decided in a task of its own (``provider.disallowed_tools``, the gate's ``pre``
stage, then a person when one has to decide) and answered ``once`` or ``reject``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hotplex.agent_tools import CALL_TIMEOUT, Grant
from hotplex.aio import cancel_and_wait
from hotplex.errors import ProtocolError
from hotplex.interfaces import AgentProcess, ToolGate
from hotplex.providers.opencode_events import OpenCodeNormalizer, needs_person, rule_matches
from hotplex.types import ToolDecision, ToolRequest

if TYPE_CHECKING:
    from hotplex.providers.opencode import OpenCodeProvider

__all__ = ["PermissionAnswers"]

log = logging.getLogger("hotplex.providers.opencode")

#: How long an approved agent-tool call waits while another session runs the same call.
GRANT_WAIT = CALL_TIMEOUT + 15.0


class PermissionAnswers(AgentProcess):
    """The permission side of an OpenCode session (:class:`OpenCodeSession`)."""

    directory: str
    _provider: OpenCodeProvider
    _gate: ToolGate
    _normalizer: OpenCodeNormalizer
    _permissions: dict[str, asyncio.Task[None]]
    _asked: set[str]
    _grants: dict[str, Grant]
    agent_id: str
    _mode: str | None

    def _spawn(self, key: str, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=f"opencode-perm:{key}")
        self._permissions[key] = task
        task.add_done_callback(lambda _: self._permissions.pop(key, None))

    def _on_permission(self, props: Mapping[str, Any]) -> None:
        self._asked.add(str(props.get("id")))
        self._spawn(str(props.get("id")), self._answer_permission(props))

    async def _reply(self, request_id: str, body: Mapping[str, Any]) -> None:
        self._asked.discard(request_id)
        with contextlib.suppress(ProtocolError):
            await self._provider.request(
                "POST", f"/permission/{request_id}/reply", directory=self.directory, body=body
            )

    async def _reject_pending(self, reason: str) -> None:
        """Cancel the gate tasks and reject what OpenCode still waits for (an abort leaves
        its permission requests pending)."""
        self._revoke_grants()
        current = asyncio.current_task()  # a gate answer with interrupt=True lands here
        tasks = [task for task in self._permissions.values() if task is not current]
        await cancel_and_wait(*tasks)
        for request_id in list(self._asked):
            await self._reply(request_id, {"reply": "reject", "message": reason})

    async def _answer_permission(self, props: Mapping[str, Any]) -> None:
        request_id = str(props.get("id"))
        try:
            decision = await self._decide(props)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the gate failed on OpenCode permission %s", request_id)
            decision = ToolDecision("deny", message="the permission check failed")
        if decision.behavior == "allow":
            decision = await self._grant_agent_tool(props)
        if decision.behavior == "allow":
            body: dict[str, Any] = {"reply": "once"}
        else:
            body = {"reply": "reject", "message": decision.message or "denied"}
        await self._reply(request_id, body)
        if decision.behavior != "allow" and decision.interrupt:
            await self.interrupt()

    async def _decide(self, props: Mapping[str, Any]) -> ToolDecision:
        permission = str(props.get("permission") or "")
        patterns = [str(p) for p in props.get("patterns") or ()]
        call_id = str((props.get("tool") or {}).get("callID") or "") or None
        known = self._normalizer.tool_calls.get(call_id or "")
        tool = known.tool if known is not None else permission
        if known is not None:
            tool_input = dict(known.input)
        else:
            tool_input = dict(props.get("metadata") or {}) or {"patterns": patterns}
        reason = None
        if permission != tool:
            reason = f"OpenCode asks for the {permission} permission"
            reason += f" ({', '.join(patterns)})" if patterns else ""
        facts = {**tool_input, "patterns": patterns}
        settings = self._provider.settings
        mode = self._mode or settings.permission_mode
        if any(rule_matches(r, permission, tool, facts) for r in settings.disallowed_tools):
            return ToolDecision(
                "deny", message=f"{tool} is not allowed here (provider.disallowed_tools)"
            )
        person = needs_person(permission, mode) and not any(
            rule_matches(r, permission, tool, facts) for r in settings.allowed_tools
        )
        if permission == "external_directory" and patterns:
            own = str(self._provider.state_root.resolve()) + os.sep
            person = person and not all(p.startswith(own) for p in patterns)
        if person and mode == "plan":
            return ToolDecision("deny", message="Plan mode: the agent may only read and plan.")
        blocked = patterns[0] if permission == "external_directory" and patterns else None
        request = ToolRequest(
            stage="pre",
            tool=tool,
            input=tool_input,
            tool_use_id=call_id,
            reason=reason,
            blocked_path=blocked,
        )
        pre = await self._gate(request)
        if pre.behavior in ("allow", "deny") or (pre.behavior == "defer" and not person):
            return ToolDecision("allow") if pre.behavior == "defer" else pre
        if mode == "dontAsk":
            return ToolDecision("deny", message=f"{tool} needs approval (permission mode dontAsk)")
        always = [str(p) for p in props.get("always") or ()]
        suggestions: tuple[Mapping[str, Any], ...] = ()
        if tool == "bash" and always:
            rules = [{"toolName": tool, "ruleContent": rule} for rule in always]
            suggestions = ({"type": "addRules", "rules": rules},)
        return await self._gate(
            ToolRequest(
                stage="permission",
                tool=tool,
                input=tool_input,
                tool_use_id=call_id,
                reason=reason,
                suggestions=suggestions,
                blocked_path=blocked,
            )
        )

    # -- agent tools (the hotplex MCP server) ------------------------------------------

    async def _grant_agent_tool(self, props: Mapping[str, Any]) -> ToolDecision:
        """An approved call of a HotPlex agent tool: grant it to this session before OpenCode
        makes it (its MCP server is shared by the sessions of the directory, so the bridge
        finds the call's session by its grant, and runs nothing without one)."""
        grants = self._provider.agent_tool_grants()
        permission = str(props.get("permission") or "")
        if grants is None or permission not in grants.tools:
            return ToolDecision("allow")
        call_id = str((props.get("tool") or {}).get("callID") or "")
        known = self._normalizer.tool_calls.get(call_id)
        if known is None or known.tool != permission:
            return ToolDecision("deny", message=f"{permission}: HotPlex did not see the call")
        grant = await grants.grant(
            self.agent_id, self.directory, permission, known.input, timeout=GRANT_WAIT
        )
        if grant is None:
            return ToolDecision(
                "deny", message=f"{permission}: the same call is running for another session"
            )
        self._grants[call_id] = grant
        return ToolDecision("allow")

    def _settle_grant(self, part: Mapping[str, Any]) -> None:
        """A tool part that ended without using its grant (aborted, failed) gives it back."""
        status = (part.get("state") or {}).get("status")
        if part.get("type") == "tool" and status in ("completed", "error"):
            grant = self._grants.pop(str(part.get("callID") or ""), None)
            grants = self._provider.agent_tool_grants()
            if grant is not None and grants is not None:
                grants.revoke(grant)

    def _revoke_grants(self) -> None:
        grants = self._provider.agent_tool_grants()
        if grants is not None:
            grants.revoke(*self._grants.values())
        self._grants.clear()

    async def _reject_question(self, props: Mapping[str, Any]) -> None:
        with contextlib.suppress(ProtocolError):
            await self._provider.request(
                "POST", f"/question/{props.get('id')}/reject", directory=self.directory
            )
