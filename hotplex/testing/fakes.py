"""In-process fakes: a provider with queued events and a chat adapter that records."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotplex.events import AgentEvent, agent_event
from hotplex.interfaces import AgentProcess, ChatAdapter, MessageOperations, Provider, ToolGate
from hotplex.records import AgentToolSpec, ToolCallContext
from hotplex.types import (
    AgentStartSpec,
    ApprovalRequest,
    IncomingMessage,
    MessageRef,
    ToolRequest,
)

__all__ = [
    "EchoTool",
    "FakeAgentProcess",
    "FakeChatAdapter",
    "FakeMessageOperations",
    "FakeProvider",
    "ToolCall",
    "echo_turn",
]


@dataclass(frozen=True)
class ToolCall:
    """A queued step: the fake agent asks to run ``tool`` with ``input`` (through the gate).

    When the gate allows, ``run(input)`` (if given) is the tool: it runs then and its return
    value is the output (else ``output``). With ``say_result`` the agent then answers
    ``tool said: <output>`` or ``tool error: <denial>``, as the fake Anthropic API does.
    """

    tool: str
    input: Mapping[str, Any]
    output: str = "ok"
    run: Callable[[Mapping[str, Any]], str] | None = None
    say_result: bool = False


Step = AgentEvent | ToolCall | Callable[["FakeAgentProcess"], AgentEvent]
"""A queued turn's step: an event, a tool call, or a function of the process that gives the
event when the turn reaches it (``lambda p: agent_event("text", text=str(p.prompts))``)."""


def echo_turn(prompt: str) -> list[Step]:
    """The default turn: stream ``echo: <prompt>`` in two deltas."""
    text = f"echo: {prompt}"
    half = len(text) // 2
    return [
        agent_event("text_delta", text=text[:half]),
        agent_event("text_delta", text=text[half:]),
        agent_event("text", text=text),
        agent_event(
            "usage",
            input_tokens=len(prompt.split()),
            output_tokens=2,
            cache_read_tokens=0,
            cache_write_tokens=0,
            cost_usd=0.0,
            context_used=0,
            context_window=200_000,
        ),
    ]


class FakeAgentProcess(AgentProcess):
    def __init__(self, provider: FakeProvider, spec: AgentStartSpec, gate: ToolGate) -> None:
        self.provider = provider
        self.spec = spec
        self.gate = gate
        self.prompts: list[str] = []
        self.controls: list[tuple[str, dict[str, Any]]] = []
        self._alive = True
        self._crashed = False
        self._interrupted = asyncio.Event()

    @property
    def alive(self) -> bool:
        return self._alive

    async def turn(self, prompt: str) -> AsyncIterator[AgentEvent]:
        if not self._alive and not self._crashed:
            raise RuntimeError("fake agent is closed")
        self.prompts.append(prompt)
        if not self._crashed:
            self._interrupted.clear()
        steps = [] if self._crashed else self.provider.next_turn(prompt)
        for item in steps:
            if self._interrupted.is_set():
                break
            step = item if isinstance(item, AgentEvent | ToolCall) else item(self)
            if isinstance(step, ToolCall):
                async for event in self._tool(step):
                    yield event
                continue
            if step.type == "status" and step.data.get("text") == "hang":
                await self._interrupted.wait()
                break
            yield step
            if self.provider.delay:
                try:
                    await asyncio.wait_for(self._interrupted.wait(), self.provider.delay)
                except TimeoutError:
                    pass
        if self._crashed:
            message = "the fake agent crashed"
            yield agent_event("error", code="agent_crashed", message=message, retryable=True)
            yield agent_event("done", status="error", duration_ms=0)
            return
        status = "interrupted" if self._interrupted.is_set() else "ok"
        yield agent_event("done", status=status, duration_ms=0)

    async def _tool(self, call: ToolCall) -> AsyncIterator[AgentEvent]:
        tool_use_id = f"toolu_fake{next(self.provider.counter)}"
        yield agent_event(
            "tool_use", tool_use_id=tool_use_id, name=call.tool, input=dict(call.input)
        )
        request = ToolRequest(
            stage="permission", tool=call.tool, input=call.input, tool_use_id=tool_use_id
        )
        decision = await self.gate(request)
        if decision.behavior == "allow":
            tool_input = call.input if decision.updated_input is None else decision.updated_input
            output = call.output if call.run is None else call.run(tool_input)
            yield agent_event("tool_result", tool_use_id=tool_use_id, output=output, is_error=False)
            said = f"tool said: {output}"
        else:
            yield agent_event(
                "tool_result", tool_use_id=tool_use_id, output=decision.message, is_error=True
            )
            said = f"tool error: {decision.message}"
        if call.say_result:
            yield agent_event("text", text=said)

    async def interrupt(self) -> None:
        self._interrupted.set()

    def crash(self) -> None:
        """Act as if the agent's process died: the running turn (or the next one) ends with
        an ``agent_crashed`` error and ``done`` status ``error`` (later turns too), and the
        agent is not alive."""
        self._crashed = True
        self._alive = False
        self._interrupted.set()

    async def control(self, subtype: str, **fields: Any) -> dict[str, Any]:
        self.controls.append((subtype, fields))
        return {}

    async def close(self, grace: float = 5.0) -> None:
        self._alive = False
        self._interrupted.set()
        self.provider.closed.append(self.spec.session_id)


class FakeProvider(Provider):
    """A provider whose turns come from a queue (default: :func:`echo_turn`).

    ``delay`` seconds pass between events; a ``status`` event with text ``hang`` waits until
    interrupted. Started processes are kept in ``processes``.
    """

    name = "fake"

    def __init__(
        self,
        turns: list[list[Step]] | None = None,
        *,
        delay: float = 0.0,
        default: Callable[[str], list[Step]] = echo_turn,
    ) -> None:
        self.turns: list[list[Step]] = list(turns or [])
        self.delay = delay
        self.default = default
        self.processes: list[FakeAgentProcess] = []
        self.closed: list[str] = []
        self.counter = itertools.count(1)

    def queue_turn(self, *steps: Step) -> None:
        self.turns.append(list(steps))

    def next_turn(self, prompt: str) -> list[Step]:
        return self.turns.pop(0) if self.turns else self.default(prompt)

    async def start(self, spec: AgentStartSpec, gate: ToolGate) -> AgentProcess:
        process = FakeAgentProcess(self, spec, gate)
        self.processes.append(process)
        return process


@dataclass
class FakeMessageOperations(MessageOperations):
    """Records every call as ``(method, *args)`` in ``calls``."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _ref(self, address: str) -> MessageRef:
        return MessageRef(address=address, message_id=f"m{next(self._ids)}")

    async def send(self, address: str, text: str) -> MessageRef:
        ref = self._ref(address)
        self.calls.append(("send", address, text, ref.message_id))
        return ref

    async def update(self, ref: MessageRef, text: str) -> None:
        self.calls.append(("update", ref.address, text, ref.message_id))

    async def delete(self, ref: MessageRef) -> None:
        self.calls.append(("delete", ref.address, ref.message_id))

    async def set_status(self, address: str, status: str | None) -> None:
        self.calls.append(("set_status", address, status))

    async def ask_approval(self, request: ApprovalRequest) -> MessageRef:
        ref = self._ref(request.address or "")
        self.calls.append(("ask_approval", request.address, request.permission_id))
        return ref

    async def upload_file(self, address: str, path: Path, title: str = "") -> MessageRef:
        ref = self._ref(address)
        self.calls.append(("upload_file", address, str(path), title))
        return ref

    def texts(self, address: str | None = None) -> list[str]:
        """The latest text of every message sent (after its updates)."""
        latest: dict[str, str] = {}
        for call in self.calls:
            if call[0] in ("send", "update") and (address is None or call[1] == address):
                latest[call[3]] = call[2]
        return list(latest.values())


class FakeChatAdapter(ChatAdapter):
    """A chat platform driven by the test: ``await adapter.receive(message)``."""

    name = "fake"

    def __init__(self) -> None:
        self._operations = FakeMessageOperations()
        self._deliver: Callable[[IncomingMessage], Awaitable[None]] | None = None
        self._ready = asyncio.Event()

    @property
    def operations(self) -> FakeMessageOperations:
        return self._operations

    async def run(self, deliver: Callable[[IncomingMessage], Awaitable[None]]) -> None:
        self._deliver = deliver
        self._ready.set()
        await asyncio.Event().wait()  # until cancelled

    async def receive(self, message: IncomingMessage, timeout: float = 5.0) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout)
        assert self._deliver is not None
        await self._deliver(message)


class EchoTool:
    """An agent tool handler that answers ``ECHOED<text> for <session id>`` and keeps every
    call's arguments and context in ``calls``; :meth:`spec` registers it as ``echo``."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], ToolCallContext]] = []

    async def __call__(self, args: dict[str, Any], ctx: ToolCallContext) -> str:
        self.calls.append((args, ctx))
        return f"ECHOED<{args.get('text')}> for {ctx.session_id}"

    def spec(self) -> AgentToolSpec:
        schema = {"type": "object", "properties": {"text": {"type": "string"}}}
        return AgentToolSpec("echo", "Echo the text back", schema, self)
