"""The compact status line of a turn (thinking, tools, approvals) and its usage footer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2

from hotplex.events import AgentEvent

__all__ = ["FOOTER_TEMPLATE", "TurnStatus", "render_footer"]

#: The usage footer, from the core template folder (``templates/text/usage.md.j2``).
FOOTER_TEMPLATE = "core/text/usage.md.j2"
_WIDTH = 60
_SUMMARY_KEYS = ("command", "file_path", "path", "pattern", "url", "query", "description")


def _summary(tool_input: Any) -> str:
    if not isinstance(tool_input, Mapping):
        return ""
    for key in _SUMMARY_KEYS:
        value = tool_input.get(key)
        if isinstance(value, str) and value.strip():
            line = " ".join(value.split())
            return line if len(line) <= _WIDTH else line[: _WIDTH - 1] + "…"
    return ""


class TurnStatus:
    """Follows a turn's events and keeps one short line saying what the agent does."""

    def __init__(self) -> None:
        self.line: str | None = None
        self.tools = 0
        self._names: dict[str, str] = {}

    def apply(self, event: AgentEvent) -> bool:
        """Take one event; True when the line changed."""
        before = self.line
        data = event.data
        if event.type == "thinking":
            self.line = "thinking…"
        elif event.type == "tool_use":
            self.tools += 1
            name = str(data.get("name", "tool"))
            self._names[str(data.get("tool_use_id"))] = name
            summary = _summary(data.get("input"))
            count = f" ({self.tools} tools)" if self.tools > 1 else ""
            self.line = f"{name}{': ' + summary if summary else ''}{count}"
        elif event.type == "tool_result" and data.get("is_error"):
            name = self._names.get(str(data.get("tool_use_id")), "tool")
            self.line = f"{name} failed"
        elif event.type == "permission_request":
            self.line = f"waiting for approval: {data.get('tool', 'tool')}"
        elif event.type == "permission_decision":
            self.line = "approved" if data.get("decision") == "allow" else "denied"
        elif event.type == "status":
            self.line = str(data.get("text", "")) or None
        elif event.type in ("text_delta", "text"):
            self.line = None
        return self.line != before


def render_footer(
    templates: jinja2.Environment,
    *,
    usage: Mapping[str, Any] | None,
    done: Mapping[str, Any] | None,
    error: Mapping[str, Any] | None,
    template: str = FOOTER_TEMPLATE,
) -> str:
    """The footer text (tokens, cost, duration, how the turn ended), stripped."""
    duration_ms = (done or {}).get("duration_ms")
    return (
        templates.get_template(template)
        .render(
            usage=dict(usage) if usage is not None else None,
            status=(done or {}).get("status", "ok"),
            seconds=duration_ms / 1000 if isinstance(duration_ms, int | float) else None,
            error=dict(error) if error is not None else None,
        )
        .strip()
    )
