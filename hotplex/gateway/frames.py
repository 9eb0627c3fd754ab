"""What clients send and receive: request parsing, error frames, event frames.

The same shapes serve the WebSocket (frames) and HTTP (bodies): an ``execute`` frame and the
body of ``POST /api/v1/execute`` parse alike, and an HTTP error body is the error frame.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hotplex.events import AgentEvent

__all__ = [
    "SESSION_ID",
    "DecisionRequest",
    "ExecuteRequest",
    "GatewayError",
    "dumps",
    "error_frame",
    "event_frame",
    "invalid",
    "new_session_id",
    "optional_str",
    "parse_object",
    "request_id_of",
    "required_session_id",
    "session_id_of",
    "since_seq",
]

#: A client's own session id: 1 to 128 of [A-Za-z0-9._-].
SESSION_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
MAX_REQUEST_ID = 256


class GatewayError(Exception):
    """A request the gateway refuses: an error frame on the WebSocket, ``status`` on HTTP."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int = 400,
        retryable: bool = False,
        retry_after: float | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        #: extra keys of the frame's ``data`` (``limit`` and ``retry_after`` of a 429)
        self.details = dict(details or {})

    def frame(self, request_id: str | None = None) -> dict[str, Any]:
        return error_frame(
            self.code,
            self.message,
            retryable=self.retryable,
            request_id=request_id,
            details=self.details,
        )


def error_frame(
    code: str,
    message: str,
    *,
    retryable: bool = False,
    request_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error"}
    if request_id is not None:
        frame["request_id"] = request_id
    frame["data"] = {"code": code, "message": message, "retryable": retryable, **(details or {})}
    return frame


def event_frame(event: AgentEvent, session_id: str) -> dict[str, Any]:
    """The event as a client sees it: carrying the client's own session id."""
    frame = event.to_dict()
    frame["session_id"] = session_id
    return frame


def dumps(frame: Mapping[str, Any]) -> str:
    """The frame as compact JSON text that always encodes as UTF-8.

    An agent's output can carry a lone surrogate (half of an emoji, decoded from a
    ``\\ud83d`` escape in its JSON stream); sent as is it cannot be encoded and the socket's
    writer would fail. A lone surrogate becomes U+FFFD; a pair split in two code points is
    joined into its character.
    """
    text = json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
    if text.isascii():  # the common case, and the cheapest test
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def invalid(message: str) -> GatewayError:
    return GatewayError("invalid_request", message)


def parse_object(text: str | bytes) -> dict[str, Any]:
    """A JSON object, or GatewayError ``invalid_json``."""
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise GatewayError("invalid_json", "The message is not valid JSON.") from None
    if not isinstance(value, dict):
        raise GatewayError("invalid_json", "The message must be a JSON object.")
    return value


def optional_str(body: Mapping[str, Any], name: str, *, limit: int = 4096) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise invalid(f"'{name}' must be a string of 1 to {limit} characters.")
    return value


def request_id_of(body: Mapping[str, Any]) -> str | None:
    """The frame's ``request_id`` if it is usable, for echoing it (never raises)."""
    value = body.get("request_id")
    return value if isinstance(value, str) and 0 < len(value) <= MAX_REQUEST_ID else None


def session_id_of(body: Mapping[str, Any]) -> str | None:
    value = body.get("session_id")
    if value is None:
        return None
    if not isinstance(value, str) or not SESSION_ID.fullmatch(value):
        raise invalid("'session_id' must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', '-'.")
    return value


def required_session_id(body: Mapping[str, Any]) -> str:
    value = session_id_of(body)
    if value is None:
        raise invalid("'session_id' is required.")
    return value


def new_session_id() -> str:
    return uuid.uuid4().hex


def since_seq(value: Any, name: str = "since_seq") -> int:
    if value is None:
        return 0
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise invalid(f"'{name}' must be a non-negative integer.")
    return value


@dataclass(frozen=True, slots=True)
class ExecuteRequest:
    session_id: str | None
    prompt: str
    request_id: str | None

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> ExecuteRequest:
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise invalid("'prompt' is required: a non-empty string.")
        return cls(
            session_id_of(body),
            prompt,
            optional_str(body, "request_id", limit=MAX_REQUEST_ID),
        )


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    decision: Literal["allow", "deny"]
    scope: Literal["once", "session"]
    reason: str | None

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> DecisionRequest:
        decision = body.get("decision")
        scope = body.get("scope", "once")
        if decision not in ("allow", "deny"):
            raise invalid('\'decision\' must be "allow" or "deny".')
        if scope not in ("once", "session"):
            raise invalid('\'scope\' must be "once" or "session".')
        return cls(decision, scope, optional_str(body, "reason"))
