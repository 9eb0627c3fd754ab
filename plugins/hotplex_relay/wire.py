"""The relay protocol's lines, and what the asking side makes of them.

``POST <peer url>/ask`` with a JSON body ``{"prompt", "chain", "hops"}`` (``chain``: the
hops so far, the asking conversation last; ``hops``: their number) answers, once the
request is verified and accepted, an NDJSON stream (``application/x-ndjson``), one object a
line:

- ``{"type": "accepted", "conversation": <the conversation on the peer>}``, first;
- ``{"type": "event", "event": {"type", "data"}}``: the turn's events (text, tool names,
  approvals, status, errors, ``done``);
- ``{"type": "heartbeat"}`` while the turn is quiet (an approval, a long tool);
- ``{"type": "end", "status": "ok" | "error" | "interrupted" | "refused", "reason"?,
  "mac"}``, last: ``mac`` is the HMAC of every line before it (``signing.StreamMac``).

A stream without its ``end`` line, or whose ``mac`` does not match, is incomplete: the
asker shows what came, marked as incomplete, never as a whole answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hotplex import AgentEvent, agent_event

__all__ = ["MAX_ANSWER", "Answer", "Reception", "encode", "forwarded"]

#: The turn events a peer forwards, and the data keys of each it keeps.
_FORWARD: dict[str, tuple[str, ...]] = {
    "text_delta": ("text",),
    "text": ("text",),
    "tool_use": ("name",),
    "tool_result": ("is_error", "output"),
    "permission_request": ("tool", "kind"),
    "permission_decision": ("decision", "by", "reason"),
    "status": ("text",),
    "error": ("code", "message"),
    "done": ("status",),
}
_ERROR_OUTPUT = 300  # characters of a failed tool's output sent back
#: The most text a peer may send for one answer: past it the answer is cut (a hostile or
#: broken peer must not fill the asker's memory).
MAX_ANSWER = 1_000_000


def encode(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def forwarded(event: AgentEvent) -> dict[str, Any] | None:
    """The line of one of the peer's turn events, or None for one not forwarded (usage,
    thinking, a successful tool's output: the asker needs the answer, not the workings)."""
    keys = _FORWARD.get(event.type)
    if keys is None:
        return None
    data = {k: event.data[k] for k in keys if k in event.data}
    if event.type == "tool_result":
        if not data.get("is_error"):
            data.pop("output", None)
        else:
            data["output"] = str(data.get("output", ""))[:_ERROR_OUTPUT]
    return {"type": "event", "event": {"type": event.type, "data": data}}


@dataclass
class Answer:
    """What came back from a peer: the text (attributed), whether it is whole, the tools
    the peer's policy denied, and the error that cut it short."""

    peer: str
    text: str = ""
    complete: bool = False
    status: str = "incomplete"
    denied: list[str] = field(default_factory=list)
    error: str | None = None

    def summary(self) -> str:
        """The answer as the agent tool returns it (the caveats after the text)."""
        parts = [self.text or "(no text)"]
        if self.denied:
            parts.append(f"[{self.peer} refused or failed: {'; '.join(self.denied)}]")
        if not self.complete:
            parts.append(f"[INCOMPLETE: {self.error or 'the answer was cut short'}]")
        return "\n\n".join(parts)


class Reception:
    """Turns a peer's lines into events for the asking conversation's renderer: the
    answer's first words are attributed to the peer (``**b:** ...``), a tool the peer's
    policy denied is said in the answer, and :meth:`cut` ends an answer that stopped
    early with an explicit incomplete mark."""

    def __init__(self, peer: str) -> None:
        self.answer = Answer(peer)
        self._prefix = f"**{peer}:** "
        self._blocks: list[str] = []
        self._current = ""
        self._tools: list[str] = []
        self._size = 0  # characters received, deltas and whole texts alike

    def _attributed(self, text: str) -> str:
        if self._blocks or not text:
            return text
        return self._prefix + text

    def feed(self, line: dict[str, Any]) -> list[AgentEvent]:
        """The events to show for one ``event`` line (other lines show nothing); raises
        ValueError past :data:`MAX_ANSWER`."""
        if line.get("type") != "event" or not isinstance(line.get("event"), dict):
            return []
        kind, data = line["event"].get("type"), line["event"].get("data")
        if not isinstance(data, dict):
            return []
        if kind in ("text_delta", "text"):
            self._size += len(str(data.get("text", "")))
            if self._size > MAX_ANSWER:
                raise ValueError(f"the answer is longer than {MAX_ANSWER:,} characters")
        if kind == "text_delta":
            text = str(data.get("text", ""))
            shown = self._prefix + text if not self._blocks and not self._current else text
            self._current += text
            return [agent_event("text_delta", text=shown)] if text else []
        if kind == "text":
            text = str(data.get("text", ""))
            shown = self._attributed(text)
            self._blocks.append(text)
            self._current = ""
            return [agent_event("text", text=shown)]
        if kind == "tool_use":
            self._tools.append(str(data.get("name", "?")))
            return [agent_event("status", text=f"{self.answer.peer}: {self._tools[-1]}")]
        if kind == "tool_result" and data.get("is_error"):
            tool = self._tools[-1] if self._tools else "a tool"
            self.answer.denied.append(f"{tool}: {str(data.get('output', ''))[:200]}")
            return []
        if kind == "permission_request":
            tool = data.get("tool", "?")
            return [agent_event("status", text=f"{self.answer.peer} waits for approval: {tool}")]
        if kind == "done":
            self.answer.status = str(data.get("status", "ok"))
        return []

    def text(self) -> str:
        blocks = [*self._blocks, self._current]
        return "\n\n".join(b for b in blocks if b)

    def finish(self, status: str, reason: str | None = None) -> list[AgentEvent]:
        """The stream ended whole with ``status`` (and the peer's ``reason`` for a refusal);
        the events that close the answer."""
        self.answer.error = reason
        self.answer.complete = status == "ok"
        self.answer.status = status
        self.answer.text = self.text()
        events = self._flush()
        if self.answer.denied:
            note = f"⚠️ {self.answer.peer} refused or failed: " + "; ".join(self.answer.denied)
            events.append(agent_event("text", text=note))
        if status != "ok":
            why = self.answer.error or f"its turn ended with {status}"
            self.answer.error = why
            verb = "refused the request" if status == "refused" else "did not finish"
            events.append(agent_event("text", text=f"⚠️ {self.answer.peer} {verb}: {why}"))
        done = "ok" if status == "ok" else "error"
        return [*events, agent_event("done", status=done, duration_ms=0)]

    def cut(self, reason: str) -> list[AgentEvent]:
        """The stream stopped before its end: keep what came, marked incomplete."""
        self.answer.complete = False
        self.answer.status = "incomplete"
        self.answer.error = reason
        self.answer.text = self.text()
        events = self._flush()
        mark = f"⚠️ INCOMPLETE answer from {self.answer.peer}: {reason}"
        events.append(agent_event("text", text=mark))
        return [*events, agent_event("done", status="error", duration_ms=0)]

    def _flush(self) -> list[AgentEvent]:
        """Close the block being streamed as a whole ``text`` (a renderer would otherwise
        drop the deltas when the next ``text`` comes)."""
        if not self._current:
            return []
        text = self._attributed(self._current)
        self._blocks.append(self._current)
        self._current = ""
        return [agent_event("text", text=text)]
