"""The policy chain every tool call meets before a person is asked.

Each policy returns a verdict or None (no opinion). The chain combines them: any ``deny``
wins, then any ``ask``, then any ``allow``. The WAF, allow-listed tools of unattended
sessions and the session's own grants are policies.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from hotplex.tool_names import canonical_tool_name
from hotplex.types import ToolRequest

__all__ = ["PolicyChain", "PolicyVerdict", "SessionGrants", "ToolCall", "ToolPolicy"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool request in the context of its session."""

    session_id: str
    address: str | None
    work_dir: Path
    request: ToolRequest

    @property
    def tool_name(self) -> str:
        """The tool's name for policies: a HotPlex agent tool has one name on every provider
        (``mcp__hotplex__<name>``, :func:`hotplex.tool_names.canonical_tool_name`)."""
        return canonical_tool_name(self.request.tool)


@dataclass(frozen=True, slots=True)
class PolicyVerdict:
    action: Literal["allow", "deny", "ask"]
    reason: str = ""
    rule: str | None = None


class ToolPolicy(Protocol):
    name: str

    async def check(self, call: ToolCall) -> PolicyVerdict | None: ...


class PolicyChain:
    def __init__(self, policies: Sequence[ToolPolicy] = ()) -> None:
        self.policies = list(policies)

    async def check(self, call: ToolCall) -> PolicyVerdict | None:
        verdicts = [v for p in self.policies if (v := await p.check(call)) is not None]
        for action in ("deny", "ask", "allow"):
            for verdict in verdicts:
                if verdict.action == action:
                    return verdict
        return None


def _rule_of(request: ToolRequest) -> str | None:
    """The rule the CLI suggested for remembering this call (``addRules`` suggestion)."""
    for suggestion in request.suggestions:
        if suggestion.get("type") == "addRules":
            for rule in suggestion.get("rules") or ():
                if rule.get("toolName") == request.tool and rule.get("ruleContent"):
                    return str(rule["ruleContent"])
    return None


def _matches(rule: str, command: str) -> bool:
    for suffix in (":*", " *", "*"):
        if rule.endswith(suffix):
            return command.startswith(rule[: -len(suffix)])
    return command == rule


@dataclass
class SessionGrants:
    """What a person allowed for the rest of a session (approval scope ``session``): the
    rule the CLI suggested (``Bash(npm test:*)``), or the exact input when it suggested
    none. The WAF still runs on every call."""

    name: str = "session-grants"
    grants: dict[str, set[tuple[str, str | None]]] = field(default_factory=dict)

    def grant(self, session_id: str, request: ToolRequest) -> None:
        rule = _rule_of(request)
        if rule is None and request.tool in ("Bash", "bash"):
            rule = str(request.input.get("command", ""))
        elif rule is None:
            rule = json.dumps(dict(request.input), sort_keys=True)
        self.grants.setdefault(session_id, set()).add((canonical_tool_name(request.tool), rule))

    def clear(self, session_id: str) -> None:
        self.grants.pop(session_id, None)

    async def check(self, call: ToolCall) -> PolicyVerdict | None:
        request = call.request
        for tool, rule in self.grants.get(call.session_id, ()):
            if tool != call.tool_name:
                continue
            if tool in ("Bash", "bash") and rule is not None:
                if _matches(rule, str(request.input.get("command", ""))):
                    return PolicyVerdict("allow", "allowed for this session", rule)
            elif rule == json.dumps(dict(request.input), sort_keys=True):
                return PolicyVerdict("allow", "allowed for this session", rule)
        return None
