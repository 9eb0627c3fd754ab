"""Claude Code stream-json messages -> AgentEvents (one normalizer per agent process).

What it relies on (protocols.md §2, re-checked against 2.1.197): one ``assistant`` line per
content block; ``stream_event`` wraps raw API deltas (only with --include-partial-messages);
``user`` lines carry tool results; exactly one ``result`` per turn, whose ``is_error`` (not
``subtype``) tells failure and whose ``total_cost_usd`` is cumulative for the process.
Unknown types are ignored with a debug log.
"""

from __future__ import annotations

import logging
from typing import Any

from hotplex.events import AgentEvent, agent_event

__all__ = ["ClaudeNormalizer"]

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


def _tool_output(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            elif isinstance(block, dict):
                parts.append(f"[{block.get('type', 'content')}]")
        return "\n".join(parts)
    return "" if content is None else str(content)


class ClaudeNormalizer:
    """Turns the CLI's messages into unstamped AgentEvents; tracks per-turn cost."""

    def __init__(self) -> None:
        self._cost_total = 0.0
        self.interrupt_requested = False

    def start_turn(self) -> None:
        self.interrupt_requested = False

    def feed(self, message: dict[str, Any]) -> list[AgentEvent]:
        kind = message.get("type")
        handler = getattr(self, f"_on_{kind}", None) if isinstance(kind, str) else None
        if handler is None:
            log.debug("ignoring agent message type %r", kind)
            return []
        result: list[AgentEvent] = handler(message)
        return result

    def _on_system(self, message: dict[str, Any]) -> list[AgentEvent]:
        subtype = message.get("subtype")
        if subtype == "api_retry":
            status = message.get("error_status") or message.get("error") or "no response"
            delay = float(message.get("retry_delay_ms") or 0) / 1000
            text = (
                f"API error {status}; retry {message.get('attempt')}/"
                f"{message.get('max_retries')} in {delay:.1f}s"
            )
            return [agent_event("status", text=text)]
        if subtype == "status" and isinstance(message.get("status"), str):
            return [agent_event("status", text=message["status"])]
        if subtype == "compact_boundary":
            return [agent_event("status", text="context compacted")]
        return []

    def _on_stream_event(self, message: dict[str, Any]) -> list[AgentEvent]:
        event = message.get("event") or {}
        if event.get("type") != "content_block_delta":
            return []
        delta = event.get("delta") or {}
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [agent_event("text_delta", text=str(delta["text"]))]
        return []

    def _on_assistant(self, message: dict[str, Any]) -> list[AgentEvent]:
        body = message.get("message") or {}
        if body.get("model") == "<synthetic>":
            return []  # the API error text; the result line reports it as an error
        events = []
        for block in body.get("content") or []:
            kind = block.get("type")
            if kind == "text" and block.get("text"):
                events.append(agent_event("text", text=str(block["text"])))
            elif kind == "thinking" and block.get("thinking"):
                events.append(agent_event("thinking", text=str(block["thinking"])))
            elif kind == "tool_use":
                events.append(
                    agent_event(
                        "tool_use",
                        tool_use_id=str(block.get("id", "")),
                        name=str(block.get("name", "")),
                        input=block.get("input") or {},
                    )
                )
        return events

    def _on_user(self, message: dict[str, Any]) -> list[AgentEvent]:
        if message.get("isReplay"):
            return []
        content = (message.get("message") or {}).get("content")
        if not isinstance(content, list):
            return []
        events = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                events.append(
                    agent_event(
                        "tool_result",
                        tool_use_id=str(block.get("tool_use_id", "")),
                        output=_tool_output(block.get("content")),
                        is_error=bool(block.get("is_error", False)),
                    )
                )
        return events

    def _on_result(self, message: dict[str, Any]) -> list[AgentEvent]:
        usage = message.get("usage") or {}
        total = float(message.get("total_cost_usd") or 0.0)
        cost = max(0.0, total - self._cost_total)
        self._cost_total = total
        window = 0
        for model in (message.get("modelUsage") or {}).values():
            window = max(window, int(model.get("contextWindow") or 0))
        input_tokens = int(usage.get("input_tokens") or 0)
        cache_read = int(usage.get("cache_read_input_tokens") or 0)
        cache_write = int(usage.get("cache_creation_input_tokens") or 0)
        events = [
            agent_event(
                "usage",
                input_tokens=input_tokens,
                output_tokens=int(usage.get("output_tokens") or 0),
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
                cost_usd=round(cost, 8),
                context_used=input_tokens + cache_read + cache_write,
                context_window=window,
            )
        ]
        duration = int(message.get("duration_ms") or 0)
        if not message.get("is_error"):
            events.append(agent_event("done", status="ok", duration_ms=duration))
            return events
        aborted = str(message.get("terminal_reason", "")).startswith("aborted")
        if self.interrupt_requested or aborted:
            events.append(agent_event("done", status="interrupted", duration_ms=duration))
            return events
        status = message.get("api_error_status")
        errors = message.get("errors") or []
        text = "; ".join(map(str, errors)) or str(message.get("result") or "")
        text = text or str(message.get("subtype") or "the agent reported an error")
        events.append(
            agent_event(
                "error",
                code="api_error" if status else str(message.get("subtype") or "agent_error"),
                message=text,
                retryable=status in RETRYABLE_STATUSES,
            )
        )
        events.append(agent_event("done", status="error", duration_ms=duration))
        return events
