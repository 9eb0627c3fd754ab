"""One turn's AgentEvents as OpenCode's events, messages and parts.

A turn is a user message (the prompt) and one assistant message whose parts are built as
the events arrive: ``text_delta``/``text`` make text parts, ``thinking`` reasoning parts,
``tool_use``/``tool_result`` a tool part going ``running`` -> ``completed`` or ``error``,
``usage`` the tokens and cost, ``done`` the ``step-finish`` part and the end of the turn
(``session.status`` idle, then ``session.idle``). A permission request becomes
``permission.updated`` (the shape of the SDK's ``Permission``) and ``permission.asked``
(the shape OpenCode 1.18 servers send); its decision ``permission.replied`` with both
spellings of its fields. A prompt the WAF asks about is such a permission too (``permission``
``"prompt"``, its pattern the prompt, ``metadata.kind`` ``"prompt"``), sent before the turn
starts.
"""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

from hotplex.events import AgentEvent

__all__ = ["MESSAGE_ABORTED", "TurnTranslator", "new_id", "now_ms", "oc_event"]

JSON = dict[str, Any]

MESSAGE_ABORTED = "MessageAbortedError"
#: OpenCode's provider id for models served through HotPlex.
PROVIDER_ID = "hotplex"


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def now_ms() -> int:
    return int(time.time() * 1000)


def oc_event(kind: str, properties: JSON) -> JSON:
    return {"id": new_id("evt"), "type": kind, "properties": properties}


def _summary(tool: str, data: Any) -> str:
    """A one-line pattern for a tool call (the command, the path, else the tool)."""
    if isinstance(data, dict):
        for key in ("command", "file_path", "path", "url", "pattern"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value[:200]
    return tool


class TurnTranslator:
    """Builds the OpenCode view of one turn; every method returns the events to send."""

    def __init__(self, session_id: str, prompt: str, *, model: str, directory: str) -> None:
        self.session_id = session_id
        created = now_ms()
        self.user: JSON = {
            "id": new_id("msg"),
            "sessionID": session_id,
            "role": "user",
            "time": {"created": created},
            "agent": "build",
            "model": {"providerID": PROVIDER_ID, "modelID": model},
        }
        self.user_parts: list[JSON] = [
            self._part(
                self.user["id"], "text", text=prompt, time={"start": created, "end": created}
            )
        ]
        self.assistant: JSON = {
            "id": new_id("msg"),
            "sessionID": session_id,
            "role": "assistant",
            "time": {"created": created},
            "parentID": self.user["id"],
            "modelID": model,
            "providerID": PROVIDER_ID,
            "mode": "build",
            "path": {"cwd": directory, "root": directory},
            "cost": 0.0,
            "tokens": {"input": 0, "output": 0, "reasoning": 0, "cache": {"read": 0, "write": 0}},
        }
        self.parts: list[JSON] = []
        self._text: JSON | None = None
        self._tools: dict[str, JSON] = {}
        self.finished = False

    # -- building blocks ---------------------------------------------------------------

    def _part(self, message_id: str, kind: str, **fields: Any) -> JSON:
        return {
            "id": new_id("prt"),
            "sessionID": self.session_id,
            "messageID": message_id,
            "type": kind,
            **fields,
        }

    def _add(self, kind: str, **fields: Any) -> JSON:
        part = self._part(self.assistant["id"], kind, **fields)
        self.parts.append(part)
        return part

    @staticmethod
    def _updated(part: JSON, delta: str | None = None) -> JSON:
        properties: JSON = {"part": copy.deepcopy(part)}
        if delta is not None:
            properties["delta"] = delta
        return oc_event("message.part.updated", properties)

    def _close_text(self) -> list[JSON]:
        part, self._text = self._text, None
        if part is None:
            return []
        part["time"]["end"] = now_ms()
        return [self._updated(part)]

    def _message(self, info: JSON) -> JSON:
        return oc_event("message.updated", {"info": copy.deepcopy(info)})

    def _status(self, kind: str) -> JSON:
        return oc_event("session.status", {"sessionID": self.session_id, "status": {"type": kind}})

    # -- the turn ----------------------------------------------------------------------

    def start(self) -> list[JSON]:
        step = self._add("step-start")
        return [
            self._message(self.user),
            self._updated(self.user_parts[0]),
            self._status("busy"),
            self._message(self.assistant),
            self._updated(step),
        ]

    def feed(self, event: AgentEvent) -> list[JSON]:
        handler = getattr(self, f"_on_{event.type}", None)
        return [] if handler is None or self.finished else handler(event.data)

    def _on_text_delta(self, data: JSON) -> list[JSON]:
        if self._text is None:
            self._text = self._add("text", text="", time={"start": now_ms()})
        self._text["text"] += data["text"]
        return [self._updated(self._text, delta=data["text"])]

    def _on_text(self, data: JSON) -> list[JSON]:
        if self._text is None:
            self._text = self._add("text", text="", time={"start": now_ms()})
        self._text["text"] = data["text"]
        return self._close_text()

    def _on_thinking(self, data: JSON) -> list[JSON]:
        stamp = now_ms()
        part = self._add("reasoning", text=data["text"], time={"start": stamp, "end": stamp})
        return [*self._close_text(), self._updated(part)]

    def _on_tool_use(self, data: JSON) -> list[JSON]:
        events = self._close_text()
        name = str(data["name"])
        tool_input = data["input"] if isinstance(data["input"], dict) else {"value": data["input"]}
        part = self._add(
            "tool",
            callID=str(data["tool_use_id"]),
            tool=name,
            state={
                "status": "running",
                "input": tool_input,
                "title": _summary(name, tool_input),
                "time": {"start": now_ms()},
            },
        )
        self._tools[part["callID"]] = part
        return [*events, self._updated(part)]

    def _on_tool_result(self, data: JSON) -> list[JSON]:
        part = self._tools.get(str(data["tool_use_id"]))
        if part is None:
            return []
        running = part["state"]
        output = data["output"] if isinstance(data["output"], str) else str(data["output"])
        timing = {"start": running["time"]["start"], "end": now_ms()}
        if data["is_error"]:
            part["state"] = {
                "status": "error",
                "input": running["input"],
                "error": output,
                "time": timing,
            }
        else:
            part["state"] = {
                "status": "completed",
                "input": running["input"],
                "output": output,
                "title": running["title"],
                "metadata": {},
                "time": timing,
            }
        return [self._updated(part)]

    def _on_permission_request(self, data: JSON) -> list[JSON]:
        tool = str(data["tool"])
        metadata: JSON = {"input": data["input"]}
        if data.get("kind") == "prompt":  # the WAF asks about the prompt itself
            pattern = str(data["input"].get("text", ""))[:200] or tool
            metadata["kind"] = "prompt"
        else:
            pattern = _summary(tool, data["input"])
        if data.get("reason"):
            metadata["reason"] = data["reason"]
        permission_id = str(data["permission_id"])
        legacy = {
            "id": permission_id,
            "type": tool,
            "pattern": [pattern],
            "sessionID": self.session_id,
            "messageID": self.assistant["id"],
            "title": f"{tool}: {pattern}" if pattern != tool else tool,
            "metadata": metadata,
            "time": {"created": now_ms()},
        }
        asked = {
            "id": permission_id,
            "sessionID": self.session_id,
            "permission": tool,
            "patterns": [pattern],
            "metadata": metadata,
            "always": [pattern] if "session" in data["scopes"] else [],
        }
        return [oc_event("permission.updated", legacy), oc_event("permission.asked", asked)]

    def _on_permission_decision(self, data: JSON) -> list[JSON]:
        if data["decision"] == "deny":
            reply = "reject"
        else:
            reply = "always" if data["scope"] == "session" else "once"
        properties = {
            "sessionID": self.session_id,
            "permissionID": data["permission_id"],
            "requestID": data["permission_id"],
            "response": reply,
            "reply": reply,
        }
        return [oc_event("permission.replied", properties)]

    def _on_usage(self, data: JSON) -> list[JSON]:
        tokens = self.assistant["tokens"]
        tokens["input"] += int(data["input_tokens"])
        tokens["output"] += int(data["output_tokens"])
        tokens["cache"]["read"] += int(data["cache_read_tokens"])
        tokens["cache"]["write"] += int(data["cache_write_tokens"])
        self.assistant["cost"] += float(data["cost_usd"])
        return []

    def _on_error(self, data: JSON) -> list[JSON]:
        error = {"name": "UnknownError", "data": {"message": str(data["message"])}}
        self.assistant["error"] = error
        return [oc_event("session.error", {"sessionID": self.session_id, "error": error})]

    def _on_done(self, data: JSON) -> list[JSON]:
        events = self._close_text()
        if data["status"] == "interrupted":
            error = {"name": MESSAGE_ABORTED, "data": {"message": "Aborted"}}
            self.assistant["error"] = error
            events.append(oc_event("session.error", {"sessionID": self.session_id, "error": error}))
        finish = self._add(
            "step-finish",
            reason="stop",
            cost=self.assistant["cost"],
            tokens=copy.deepcopy(self.assistant["tokens"]),
        )
        self.assistant["time"]["completed"] = now_ms()
        self.assistant["finish"] = "stop"
        self.finished = True
        return [
            *events,
            self._updated(finish),
            self._message(self.assistant),
            self._status("idle"),
            oc_event("session.idle", {"sessionID": self.session_id}),
        ]

    # -- results -----------------------------------------------------------------------

    def assistant_message(self) -> JSON:
        """``{info, parts}`` of the assistant's message, as ``POST .../message`` answers."""
        return {"info": copy.deepcopy(self.assistant), "parts": copy.deepcopy(self.parts)}

    def messages(self) -> list[JSON]:
        """The user's and the assistant's ``{info, parts}``, as the history lists them."""
        user = {"info": copy.deepcopy(self.user), "parts": copy.deepcopy(self.user_parts)}
        return [user, self.assistant_message()]
