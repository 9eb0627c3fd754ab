"""How an OpenCode turn decides it is over when its event stream was not live for all of
it, against a scripted OpenCode API (answers and event order as ``opencode serve`` 1.18.33
gives them: it stores the user message of ``prompt_async`` before it marks the session
busy), so each race runs in the same order every time."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from hotplex.config import ProviderSettings
from hotplex.events import AgentEvent
from hotplex.providers.opencode import OpenCodeProvider, OpenCodeSession
from hotplex.testing.turns import texts
from hotplex.types import ToolDecision, ToolRequest

SES = "ses_scripted"
Handler = Callable[[], Awaitable[Any]]


class ScriptedProvider(OpenCodeProvider):
    """The provider with its HTTP calls answered by ``handlers`` ("GET /session/status"
    -> coroutine) and its event stream fed by the test through the real frame router."""

    def __init__(self, tmp_path: Path, handlers: dict[str, Handler]) -> None:
        super().__init__(
            ProviderSettings(type="opencode"),
            binary=Path("/bin/true"),
            data_dir=tmp_path,
            poll_interval=60.0,  # no silence polls: only the stream drives these turns
        )
        self.handlers = handlers
        self.calls: list[str] = []

    @property
    def server_alive(self) -> bool:
        return True

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        call = f"{method} {path}"
        self.calls.append(call)
        handler = self.handlers.get(call)
        return None if handler is None else await handler()

    def event(self, kind: str, **props: Any) -> None:
        frame = {"directory": "/w", "payload": {"type": kind, "properties": props}}
        self._on_frame(json.dumps(frame).encode())

    def stream_connects(self) -> None:
        """The stream (re)connects: the reader clears readiness when it drops, and the new
        stream's first frame is ``server.connected``."""
        self._stream_ready.clear()
        self.event("server.connected")


async def allow(request: ToolRequest) -> ToolDecision:
    return ToolDecision("allow")


def now_ms() -> float:
    return time.time() * 1000


class Turn:
    """One turn's messages as OpenCode stores them, and the events it sends for them."""

    def __init__(self, text: str) -> None:
        created = now_ms()
        self.user = {"id": "msg_u", "sessionID": SES, "role": "user", "time": {"created": created}}
        self.assistant: dict[str, Any] = {
            "id": "msg_a",
            "sessionID": SES,
            "role": "assistant",
            "parentID": "msg_u",
            "providerID": "anthropic",
            "modelID": "claude-sonnet-4-6",
            "time": {"created": created},
            "cost": 0,
            "tokens": {"input": 0, "output": 0, "reasoning": 0, "cache": {"read": 0, "write": 0}},
        }
        self.text = text
        self.part: dict[str, Any] = {
            "id": "prt_t",
            "sessionID": SES,
            "messageID": "msg_a",
            "type": "text",
            "text": text,
            "time": {"start": 1, "end": 2},
        }
        self.final = {
            **self.assistant,
            "finish": "stop",
            "time": {"created": created, "completed": created + 5},
            "tokens": {"input": 9, "output": 3, "reasoning": 0, "cache": {"read": 0, "write": 0}},
            "cost": 0.001,
        }

    def stored_before_busy(self) -> list[dict[str, Any]]:
        return [{"info": self.user, "parts": []}]

    def stored_after(self) -> list[dict[str, Any]]:
        return [{"info": self.user, "parts": []}, {"info": self.final, "parts": [self.part]}]

    def start(self, provider: ScriptedProvider) -> None:
        provider.event("message.updated", sessionID=SES, info=self.user)
        provider.event("session.status", sessionID=SES, status={"type": "busy"})
        provider.event("message.updated", sessionID=SES, info=self.assistant)
        started = {**self.part, "text": "", "time": {"start": 1}}
        provider.event("message.part.updated", sessionID=SES, part=started)

    def text_events(self, provider: ScriptedProvider) -> None:
        provider.event(
            "message.part.delta",
            sessionID=SES,
            messageID="msg_a",
            partID="prt_t",
            field="text",
            delta=self.text,
        )
        provider.event("message.part.updated", sessionID=SES, part=self.part)

    def end(self, provider: ScriptedProvider) -> None:
        provider.event("message.updated", sessionID=SES, info=self.final)
        provider.event("session.status", sessionID=SES, status={"type": "idle"})
        provider.event("session.idle", sessionID=SES)


async def collect(session: OpenCodeSession, prompt: str) -> list[AgentEvent]:
    async with asyncio.timeout(10):
        return [event async for event in session.turn(prompt)]


async def test_an_idle_session_with_only_the_user_message_has_not_answered_yet(
    tmp_path: Path,
) -> None:
    """The stream connects while the prompt is on its way (as after a server restart); the
    catch-up poll finds the session idle with the user message stored and no answer yet.
    The turn must wait for the answer, not end ``ok`` without it."""
    turn = Turn("echo: remember PEAR")
    stored = [turn.stored_before_busy()]
    polled = asyncio.Event()

    async def prompt() -> None:
        provider.stream_connects()  # live now, but our prompt's first events may be gone
        return None

    async def status() -> dict[str, Any]:
        return {}  # not busy yet: OpenCode marks it busy after storing the user message

    async def messages() -> list[dict[str, Any]]:
        polled.set()
        return stored[0]

    provider = ScriptedProvider(
        tmp_path,
        {
            f"POST /session/{SES}/prompt_async": prompt,
            "GET /session/status": status,
            f"GET /session/{SES}/message": messages,
        },
    )
    session = OpenCodeSession(provider, SES, "/w", allow)
    provider._sessions[SES] = session
    provider.stream_connects()  # the stream of the new server is live before the turn
    running = asyncio.create_task(collect(session, "RECALL"))
    async with asyncio.timeout(10):
        await polled.wait()
    stored[0] = turn.stored_after()
    turn.start(provider)
    turn.text_events(provider)
    turn.end(provider)
    events = await running
    assert texts(events) == "echo: remember PEAR"
    assert [e.type for e in events][-2:] == ["usage", "done"]
    assert events[-1].data["status"] == "ok"
    assert provider.calls[:3] == [
        f"POST /session/{SES}/prompt_async",
        "GET /session/status",
        f"GET /session/{SES}/message",
    ]


async def test_parts_a_stream_drop_lost_are_caught_up_before_done(tmp_path: Path) -> None:
    """The stream drops and reconnects in the middle of a turn, losing the text part's
    events; the session is still busy then. Before ``done`` the turn reads the stored
    messages and emits the text it missed."""
    turn = Turn("echo: the lost part")
    reconnected = asyncio.Event()

    async def status() -> dict[str, Any]:
        reconnected.set()
        return {SES: {"type": "busy"}}

    async def messages() -> list[dict[str, Any]]:
        return turn.stored_after()

    provider = ScriptedProvider(
        tmp_path,
        {"GET /session/status": status, f"GET /session/{SES}/message": messages},
    )
    session = OpenCodeSession(provider, SES, "/w", allow)
    provider._sessions[SES] = session
    provider.stream_connects()
    prompted = asyncio.Event()

    async def prompt() -> None:
        prompted.set()
        return None

    provider.handlers[f"POST /session/{SES}/prompt_async"] = prompt
    running = asyncio.create_task(collect(session, "say it"))
    async with asyncio.timeout(10):
        await prompted.wait()
    turn.start(provider)
    provider.stream_connects()  # dropped and back: the text part went by meanwhile
    async with asyncio.timeout(10):
        await reconnected.wait()
    turn.end(provider)
    events = await running
    assert texts(events) == "echo: the lost part"
    assert events[-1].type == "done" and events[-1].data["status"] == "ok"
    assert next(e for e in events if e.type == "usage").data["output_tokens"] == 3
    assert provider.calls[-2:] == [f"GET /session/{SES}/message", "GET /config/providers"]


async def test_a_stream_live_for_the_whole_turn_needs_no_catch_up(tmp_path: Path) -> None:
    turn = Turn("echo: hello")

    async def prompt() -> None:
        turn.start(provider)
        turn.text_events(provider)
        turn.end(provider)

    provider = ScriptedProvider(tmp_path, {f"POST /session/{SES}/prompt_async": prompt})
    session = OpenCodeSession(provider, SES, "/w", allow)
    provider._sessions[SES] = session
    provider.stream_connects()
    events = await collect(session, "hello")
    assert texts(events) == "echo: hello" and events[-1].data["status"] == "ok"
    assert provider.calls == [f"POST /session/{SES}/prompt_async", "GET /config/providers"]


async def test_idle_without_an_answer_twice_is_a_protocol_error(tmp_path: Path) -> None:
    """No stream events at all and the session stays idle with only the user message: the
    silence polls give up after two (bounded), not end ``ok``."""
    turn = Turn("never sent")

    async def status() -> dict[str, Any]:
        return {}

    async def messages() -> list[dict[str, Any]]:
        return turn.stored_before_busy()

    provider = ScriptedProvider(
        tmp_path, {"GET /session/status": status, f"GET /session/{SES}/message": messages}
    )
    provider.poll_interval = 0.05
    session = OpenCodeSession(provider, SES, "/w", allow)
    provider._sessions[SES] = session
    provider.stream_connects()
    events = await collect(session, "hello")
    assert [e.type for e in events] == ["error", "done"]
    assert events[0].data["code"] == "protocol_error" and events[0].data["retryable"]
    assert events[1].data["status"] == "error"
    assert provider.calls.count("GET /session/status") == 2
