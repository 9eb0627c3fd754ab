"""OpenCode's wire formats: server events -> AgentEvents (one normalizer per OpenCode
session), the permission rules HotPlex sets and matches, and SSE framing.

What it relies on (protocols.md §6.3, re-checked against ``opencode serve`` 1.18.33):

- ``/global/event`` carries ``{"directory", "project", "payload": {"id", "type",
  "properties"}}``; ``sync`` payloads repeat the others and are skipped by the reader.
- A turn: ``message.updated`` (the new user message) -> ``session.status{busy}`` ->
  ``message.updated`` (assistant, ``parentID`` = the user message) -> parts (``step-start``,
  ``text``/``reasoning`` with ``message.part.delta{field:"text"}`` deltas and ``time.end`` when
  complete, ``tool`` parts going pending -> running -> completed|error, ``step-finish``) ->
  ``message.updated`` (assistant, ``finish``, ``tokens``, ``cost``) -> ... ->
  ``session.status{idle}`` + ``session.idle``.
- Events of an earlier turn can still arrive after the next prompt was sent: after an error or
  an abort OpenCode emits a second ``idle`` pair and the final update of the aborted message.
  So a turn only takes messages whose user message appeared after its prompt was sent (or
  whose assistant ``parentID`` is such a message), and only an idle that follows its own
  user message ends it.
- ``session.status{retry, attempt, message, next}`` while OpenCode retries an API error (it
  retries a 500 with no cap); ``session.error{error:{name, data}}`` for failures
  (``MessageAbortedError`` after an abort; no ``session.error`` at all when the abort hit a
  retry wait).
"""

from __future__ import annotations

import fnmatch
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hotplex.events import AgentEvent, agent_event
from hotplex.tool_names import canonical_tool_name, is_agent_tool

__all__ = [
    "CONFIG_PERMISSION",
    "SESSION_RULES",
    "OpenCodeNormalizer",
    "SSEParser",
    "ToolCallInfo",
    "error_event",
    "needs_person",
    "rule_matches",
]

log = logging.getLogger(__name__)

JSON = dict[str, Any]
#: How much earlier than our prompt (by our clock) a message may be dated and still be ours.
CLOCK_SLACK_MS = 2000.0

#: session.error names -> (our error code, retryable when OpenCode does not say)
ERROR_CODES: dict[str, tuple[str, bool]] = {
    "APIError": ("api_error", False),
    "ProviderAuthError": ("auth_error", False),
    "MessageOutputLengthError": ("output_length", False),
    "ContextOverflowError": ("context_overflow", False),
    "StructuredOutputError": ("agent_error", False),
    "UnknownError": ("agent_error", False),
}


#: Every tool asks, so the gate sees every call; nothing can answer OpenCode's question tool.
SESSION_RULES = [
    {"permission": "*", "pattern": "*", "action": "ask"},
    {"permission": "question", "pattern": "*", "action": "deny"},
]
CONFIG_PERMISSION = {"*": "ask", "question": "deny"}
#: Permissions OpenCode allows by default for read-only work: only the pre stage sees them.
READ_ONLY_PERMISSIONS = frozenset(
    {"read", "glob", "grep", "list", "lsp", "todowrite", "todoread", "task", "skill"}
    | {"plan_enter", "plan_exit", "codesearch"}
)
#: Claude Code tool names in allowed_tools / disallowed_tools -> OpenCode permission names.
CLAUDE_TOOL_NAMES = {
    "write": "edit",
    "multiedit": "edit",
    "notebookedit": "edit",
    "ls": "list",
}


def rule_matches(rule: str, permission: str, tool: str, info: Mapping[str, Any]) -> bool:
    """Whether a Claude-style rule (``Bash``, ``Bash(git status:*)``, ``Read(src/*)``) covers
    this call; names are compared without case and mapped to OpenCode permissions."""
    match = re.fullmatch(r"\s*([\w.-]+)\s*(?:\((.*)\))?\s*", rule)
    if match is None:
        return False
    if is_agent_tool(match[1]) or is_agent_tool(tool):  # one name on every provider
        if canonical_tool_name(match[1]) != canonical_tool_name(tool):
            return False
    else:
        name = match[1].lower()
        if CLAUDE_TOOL_NAMES.get(name, name) not in (permission, tool.lower()):
            return False
    content = (match[2] or "").strip()
    if content in ("", "*"):
        return True
    if permission == "bash":
        command = str(info.get("command", ""))
        for suffix in (":*", " *", "*"):
            if content.endswith(suffix):
                return command.startswith(content[: -len(suffix)])
        return command == content
    subjects = [str(p) for p in info.get("patterns", ())]
    subjects += [str(info[k]) for k in ("filePath", "path", "url") if info.get(k)]
    return any(fnmatch.fnmatchcase(subject, content) for subject in subjects)


def needs_person(permission: str, mode: str) -> bool:
    if mode == "bypassPermissions" or permission in READ_ONLY_PERMISSIONS:
        return False
    return not (mode == "acceptEdits" and permission == "edit")


class SSEParser:
    """Server-sent events -> the ``data`` of each event, with frames over ``max_frame``
    bytes dropped (and logged) instead of buffered without bound."""

    def __init__(self, max_frame: int) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._data: list[bytes] = []
        self._size = 0
        self._skipping = False

    def feed(self, chunk: bytes) -> list[bytes]:
        frames: list[bytes] = []
        buffer = self._buffer
        buffer += chunk
        while (end := buffer.find(b"\n")) != -1:
            line = bytes(buffer[:end]).rstrip(b"\r")
            del buffer[: end + 1]
            if self._skipping:
                self._skipping = False
                continue
            if line.startswith(b"data:"):
                self._data.append(line[5:].lstrip())
                self._size += len(line)
            elif not line and self._data:
                frames.append(b"\n".join(self._data))
                self._data, self._size = [], 0
        if len(buffer) + self._size > self.max_frame:
            log.error("an OpenCode event over %d bytes was dropped", self.max_frame)
            buffer.clear()
            self._data, self._size = [], 0
            self._skipping = True
        return frames


@dataclass
class ToolCallInfo:
    """A tool part as last seen: what the gate is shown when OpenCode asks about it."""

    tool: str
    input: Mapping[str, Any]


def error_event(error: Mapping[str, Any]) -> AgentEvent:
    """An ``error`` AgentEvent for OpenCode's ``{"name", "data"}`` error object."""
    name = str(error.get("name") or "UnknownError")
    data = error.get("data") if isinstance(error.get("data"), Mapping) else {}
    assert isinstance(data, Mapping)
    code, retryable = ERROR_CODES.get(name, ("agent_error", False))
    message = str(data.get("message") or name)
    status = data.get("statusCode")
    if status and str(status) not in message:
        message = f"{message} (HTTP {status})"
    if "isRetryable" in data:
        retryable = bool(data["isRetryable"])
    return agent_event("error", code=code, message=message, retryable=retryable)


def _tokens(info: Mapping[str, Any]) -> tuple[int, int, int, int]:
    tokens = info.get("tokens") or {}
    cache = tokens.get("cache") or {}
    return (
        int(tokens.get("input") or 0),
        int(tokens.get("output") or 0),
        int(cache.get("read") or 0),
        int(cache.get("write") or 0),
    )


@dataclass
class _Turn:
    started_ms: float = 0.0
    users: set[str] = field(default_factory=set)
    assistants: dict[str, JSON] = field(default_factory=dict)
    emitted_parts: set[str] = field(default_factory=set)
    tools_used: set[str] = field(default_factory=set)
    tools_done: set[str] = field(default_factory=set)
    error: AgentEvent | None = None
    aborted: bool = False
    finished: bool = False
    retry_attempt: int = 0
    retry_message: str = ""
    retry_since: float | None = None


class OpenCodeNormalizer:
    """Turns one OpenCode session's events into unstamped AgentEvents, turn by turn."""

    def __init__(self) -> None:
        self._known_messages: set[str] = set()
        self._part_types: dict[str, str] = {}
        self.tool_calls: dict[str, ToolCallInfo] = {}
        self.interrupt_requested = False
        self.gave_up = False
        self._turn = _Turn()

    # -- turn bookkeeping ------------------------------------------------------------------

    def start_turn(self) -> None:
        self.interrupt_requested = False
        self.gave_up = False
        self._turn = _Turn(started_ms=time.time() * 1000)
        self._part_types.clear()
        self.tool_calls.clear()

    @property
    def started(self) -> bool:
        """True once this turn's user message was seen."""
        return bool(self._turn.users)

    @property
    def finished(self) -> bool:
        return self._turn.finished

    @property
    def retry_since(self) -> float | None:
        """Monotonic time of this turn's first retry status, if any."""
        return self._turn.retry_since

    @property
    def retry_attempt(self) -> int:
        return self._turn.retry_attempt

    @property
    def retry_message(self) -> str:
        return self._turn.retry_message

    def model(self) -> tuple[str, str] | None:
        """(providerID, modelID) of this turn's last assistant message."""
        for info in reversed(self._turn.assistants.values()):
            if info.get("providerID") and info.get("modelID"):
                return str(info["providerID"]), str(info["modelID"])
        return None

    # -- feeding -----------------------------------------------------------------------

    def feed(self, kind: str, props: Mapping[str, Any]) -> list[AgentEvent]:
        handler: Callable[[Mapping[str, Any]], list[AgentEvent]] | None = getattr(
            self, "_on_" + kind.replace(".", "_"), None
        )
        if handler is None:
            return []
        return handler(props)

    def _on_message_updated(self, props: Mapping[str, Any]) -> list[AgentEvent]:
        info = props.get("info") or {}
        message_id = str(info.get("id") or "")
        if not message_id:
            return []
        turn = self._turn
        new = message_id not in self._known_messages
        self._known_messages.add(message_id)
        if info.get("role") == "user":
            created = float((info.get("time") or {}).get("created") or 0)
            if new and not turn.finished and created >= turn.started_ms - CLOCK_SLACK_MS:
                turn.users.add(message_id)
            return []
        if info.get("role") == "assistant" and (
            message_id in turn.assistants or info.get("parentID") in turn.users
        ):
            turn.assistants[message_id] = dict(info)
        return []

    def _on_message_part_updated(self, props: Mapping[str, Any]) -> list[AgentEvent]:
        part = props.get("part") or {}
        if part.get("messageID") not in self._turn.assistants:
            return []
        return self._part(part)

    def _part(self, part: Mapping[str, Any]) -> list[AgentEvent]:
        part_id = str(part.get("id") or "")
        kind = str(part.get("type") or "")
        self._part_types[part_id] = kind
        turn = self._turn
        if kind in ("text", "reasoning"):
            ended = (part.get("time") or {}).get("end") is not None
            text = str(part.get("text") or "")
            if not ended or not text or part_id in turn.emitted_parts:
                return []
            if part.get("synthetic") or part.get("ignored"):
                return []
            turn.emitted_parts.add(part_id)
            return [agent_event("text" if kind == "text" else "thinking", text=text)]
        if kind == "tool":
            return self._tool(part)
        return []

    def _tool(self, part: Mapping[str, Any]) -> list[AgentEvent]:
        call_id = str(part.get("callID") or part.get("id") or "")
        name = str(part.get("tool") or "")
        state = part.get("state") or {}
        status = state.get("status")
        tool_input = state.get("input") or {}
        turn = self._turn
        if status in ("running", "completed", "error"):
            self.tool_calls[call_id] = ToolCallInfo(name, tool_input)
        events: list[AgentEvent] = []
        if status in ("running", "completed", "error") and call_id not in turn.tools_used:
            turn.tools_used.add(call_id)
            events.append(
                agent_event("tool_use", tool_use_id=call_id, name=name, input=dict(tool_input))
            )
        if status in ("completed", "error") and call_id not in turn.tools_done:
            turn.tools_done.add(call_id)
            failed = status == "error"
            output = state.get("error") if failed else state.get("output")
            exit_code = (state.get("metadata") or {}).get("exit")
            failed = failed or (isinstance(exit_code, int) and exit_code != 0)
            events.append(
                agent_event(
                    "tool_result",
                    tool_use_id=call_id,
                    output="" if output is None else str(output),
                    is_error=failed,
                )
            )
        return events

    def note_tool(self, part: Mapping[str, Any]) -> None:
        """Remember a tool part of a child session (a subagent), so a permission it asks
        for shows the tool and its input."""
        state = part.get("state") or {}
        if part.get("type") == "tool" and state.get("status") == "running":
            call_id = str(part.get("callID") or "")
            self.tool_calls[call_id] = ToolCallInfo(str(part.get("tool")), state.get("input") or {})

    def _on_message_part_delta(self, props: Mapping[str, Any]) -> list[AgentEvent]:
        if props.get("messageID") not in self._turn.assistants or props.get("field") != "text":
            return []
        if self._part_types.get(str(props.get("partID"))) != "text":
            return []  # reasoning deltas: the thinking event comes with the completed part
        delta = props.get("delta")
        return [agent_event("text_delta", text=str(delta))] if delta else []

    def _on_session_status(self, props: Mapping[str, Any]) -> list[AgentEvent]:
        status = props.get("status") or {}
        kind = status.get("type")
        if kind == "idle":
            return self._idle()
        if kind == "retry" and self.started:
            turn = self._turn
            turn.retry_attempt = int(status.get("attempt") or turn.retry_attempt + 1)
            turn.retry_message = str(status.get("message") or "")
            if turn.retry_since is None:
                turn.retry_since = time.monotonic()
            text = f"retrying after API error (attempt {turn.retry_attempt})"
            if turn.retry_message:
                text += f": {turn.retry_message}"
            return [agent_event("status", text=text)]
        return []

    def _on_session_idle(self, props: Mapping[str, Any]) -> list[AgentEvent]:
        return self._idle()

    def _idle(self) -> list[AgentEvent]:
        if self.started:
            self._turn.finished = True
        return []

    def _on_session_error(self, props: Mapping[str, Any]) -> list[AgentEvent]:
        if not self.started or self._turn.finished:
            return []
        error = props.get("error") or {}
        if error.get("name") == "MessageAbortedError":
            self._turn.aborted = True
        elif self._turn.error is None:
            self._turn.error = error_event(error)
        return []

    def _on_session_compacted(self, props: Mapping[str, Any]) -> list[AgentEvent]:
        return [agent_event("status", text="context compacted")] if self.started else []

    # -- catching up after lost events -------------------------------------------------

    def replay(self, messages: Iterable[Mapping[str, Any]]) -> list[AgentEvent]:
        """Feed messages fetched with ``GET /session/{id}/message`` (newest last): those
        created since the turn started count as this turn's; parts already seen are not
        emitted again."""
        events: list[AgentEvent] = []
        for message in messages:
            info = message.get("info") or {}
            created = float((info.get("time") or {}).get("created") or 0)
            if created < self._turn.started_ms - CLOCK_SLACK_MS and info.get("id") not in (
                self._turn.assistants
            ):
                continue
            events += self._on_message_updated({"info": info})
            for part in message.get("parts") or []:
                events += self._on_message_part_updated({"part": part})
            error = info.get("error")
            if isinstance(error, Mapping) and info.get("id") in self._turn.assistants:
                events += self._on_session_error({"error": error})
        return events

    # -- the end -------------------------------------------------------------------------

    def finish(
        self,
        duration_ms: int,
        *,
        context_window: int = 0,
        failure: AgentEvent | None = None,
    ) -> list[AgentEvent]:
        """``usage`` (when a model answered), then ``error`` if any, then ``done``.
        ``failure`` is an error found outside the event stream (a lost server)."""
        turn = self._turn
        events: list[AgentEvent] = []
        if turn.assistants:
            totals = [0, 0, 0, 0]
            cost = 0.0
            context_used = 0
            for info in turn.assistants.values():
                numbers = _tokens(info)
                totals = [a + b for a, b in zip(totals, numbers, strict=True)]
                cost += float(info.get("cost") or 0.0)
                if any(numbers):
                    context_used = numbers[0] + numbers[2] + numbers[3]
                if turn.error is None and isinstance(info.get("error"), Mapping):
                    error = info["error"]
                    if error.get("name") == "MessageAbortedError":
                        turn.aborted = True
                    else:
                        turn.error = error_event(error)
            events.append(
                agent_event(
                    "usage",
                    input_tokens=totals[0],
                    output_tokens=totals[1],
                    cache_read_tokens=totals[2],
                    cache_write_tokens=totals[3],
                    cost_usd=round(cost, 8),
                    context_used=context_used,
                    context_window=context_window,
                )
            )
        if self.gave_up:
            waited = time.monotonic() - (turn.retry_since or time.monotonic())
            message = f"gave up after {turn.retry_attempt} retries in {waited:.0f}s" + (
                f": {turn.retry_message}" if turn.retry_message else ""
            )
            events.append(agent_event("error", code="api_error", message=message, retryable=True))
            events.append(agent_event("done", status="error", duration_ms=duration_ms))
            return events
        if failure is not None:
            events.append(failure)
            events.append(agent_event("done", status="error", duration_ms=duration_ms))
            return events
        if self.interrupt_requested or turn.aborted:
            events.append(agent_event("done", status="interrupted", duration_ms=duration_ms))
            return events
        if turn.error is not None:
            events.append(turn.error)
            events.append(agent_event("done", status="error", duration_ms=duration_ms))
            return events
        events.append(agent_event("done", status="ok", duration_ms=duration_ms))
        return events
