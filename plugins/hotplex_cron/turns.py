"""What a run's turn said: its answer, cost, error and the tools it was denied, read from
the turn's events; and the prompt, rendered from the job's Jinja2 template in a sandbox."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hotplex.events import AgentEvent

__all__ = ["Collected", "PromptError", "collect", "render_prompt"]

_PROMPTS = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


class PromptError(ValueError):
    """The job's prompt template does not render."""


def render_prompt(template: str, values: Mapping[str, Any]) -> str:
    """Render a job's prompt. The sandbox lets a template read what it is given and call
    nothing unsafe: a prompt written through the agent tool is not trusted."""
    try:
        return _PROMPTS.from_string(template).render(**values)
    except TemplateError as exc:
        raise PromptError(f"the prompt template does not render: {exc}") from None


@dataclass
class Collected:
    """A run's turn as it went: ``status`` is its ``done`` status (None: no ``done`` yet)."""

    blocks: list[str] = field(default_factory=list)
    cost_usd: float = 0.0
    errors: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)
    status: str | None = None
    session_id: str | None = None
    _asked: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n\n".join(b for b in self.blocks if b)

    def add(self, event: AgentEvent) -> None:
        self.session_id = event.session_id or self.session_id
        data = event.data
        if event.type == "text":
            self.blocks.append(str(data["text"]))
        elif event.type == "usage":
            self.cost_usd += float(data.get("cost_usd") or 0.0)
        elif event.type == "error":
            self.errors.append(str(data["message"]))
        elif event.type == "tool_use":
            self._asked[str(data["tool_use_id"])] = str(data["name"])
        elif event.type == "tool_result" and data.get("is_error") and _refused(data["output"]):
            self.denied.append(self._asked.get(str(data["tool_use_id"]), "a tool"))
        elif event.type == "permission_request":
            self._asked[str(data["permission_id"])] = str(data.get("tool") or "the prompt")
        elif event.type == "permission_decision" and data.get("decision") == "deny":
            self.denied.append(self._asked.get(str(data["permission_id"]), "a tool"))
        elif event.type == "done":
            self.status = str(data["status"])


def _refused(output: Any) -> bool:
    """Whether a failed tool result is the unattended policy's refusal (the gate denies
    without a ``permission_request`` then; the agent sees the policy's message)."""
    return "unattended" in str(output)


async def collect(events: AsyncIterable[AgentEvent], into: Collected, timeout: float) -> bool:
    """Read a turn up to its ``done`` into ``into``; False when ``timeout`` passed first."""

    async def read() -> None:
        async for event in events:
            into.add(event)
            if event.type == "done":
                return

    task = asyncio.ensure_future(read())
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if task in done:
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False
