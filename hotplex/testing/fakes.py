"""In-process fakes: a provider with queued events and a chat adapter that records."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotplex.address import AddressLike
from hotplex.errors import RateLimitedError
from hotplex.events import AgentEvent, agent_event
from hotplex.interfaces import (
    AgentProcess,
    ChatAdapter,
    MessageOperations,
    Provider,
    ToolGate,
    approval_outcome_text,
)
from hotplex.records import AgentToolSpec, ToolCallContext
from hotplex.types import (
    AgentStartSpec,
    ApprovalOutcome,
    ApprovalRequest,
    Attachment,
    ChatCapabilities,
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
    "RecordedCall",
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
        #: the images of each turn, in order (an empty tuple for a turn without)
        self.images: list[tuple[Path, ...]] = []
        self.controls: list[tuple[str, dict[str, Any]]] = []
        self._alive = True
        self._crashed = False
        self._interrupted = asyncio.Event()

    @property
    def alive(self) -> bool:
        return self._alive

    async def turn(self, prompt: str, *, images: Sequence[Path] = ()) -> AsyncIterator[AgentEvent]:
        if not self._alive and not self._crashed:
            raise RuntimeError("fake agent is closed")
        self.prompts.append(prompt)
        self.images.append(tuple(images))
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


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """One call a :class:`FakeMessageOperations` received: ``method``, its arguments as
    recorded in ``calls``, the monotonic time it arrived, and the name of the exception
    it raised when it was made to fail (else None)."""

    method: str
    args: tuple[Any, ...]
    at: float
    error: str | None = None


class FakeMessageOperations(MessageOperations):
    """A chat platform that records every call.

    ``calls`` holds the calls that succeeded as ``(method, *args)`` tuples; ``log`` holds
    every call, failed ones included, as a :class:`RecordedCall` stamped with ``clock``
    (monotonic). ``fail_next(n)`` makes the next ``n`` calls raise ``ConnectionError`` and
    ``rate_limit_next(n, retry_after)`` raise :class:`~hotplex.errors.RateLimitedError`
    (``methods=(...)``: only calls of those methods).
    ``capabilities`` is what the test declares; with native streaming the stream methods
    record the new part they receive, and :meth:`texts` shows what each message shows.
    """

    def __init__(
        self,
        capabilities: ChatCapabilities | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.log: list[RecordedCall] = []
        self._capabilities = capabilities or ChatCapabilities()
        self._clock = clock
        self._ids = itertools.count(1)
        self._planned: list[tuple[Exception, tuple[str, ...]]] = []
        self._called = asyncio.Event()
        self._shown: dict[str, str] = {}

    @property
    def capabilities(self) -> ChatCapabilities:
        return self._capabilities

    def fail_next(
        self, count: int = 1, error: Exception | None = None, *, methods: tuple[str, ...] = ()
    ) -> None:
        """The next ``count`` calls (of ``methods`` only, when given) raise ``error``
        (default ``ConnectionError``)."""
        failure = error or ConnectionError("fake platform failure")
        self._planned += [(failure, methods)] * count

    def rate_limit_next(
        self, count: int = 1, retry_after: float = 0.05, *, methods: tuple[str, ...] = ()
    ) -> None:
        """The next ``count`` calls (of ``methods`` only, when given) raise
        ``RateLimitedError(retry_after=...)``."""
        self._planned += [(RateLimitedError(retry_after=retry_after), methods)] * count

    def times(self, *methods: str) -> list[float]:
        """When each call of ``methods`` (every method when none) arrived, failed included."""
        return [c.at for c in self.log if not methods or c.method in methods]

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Return once ``condition()`` holds, checked after every call; TimeoutError after
        ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while not condition():
                self._called.clear()
                await self._called.wait()

    def _record(self, method: str, *args: Any) -> None:
        at = self._clock()
        self._called.set()
        for index, (error, methods) in enumerate(self._planned):
            if not methods or method in methods:
                del self._planned[index]
                self.log.append(RecordedCall(method, args, at, type(error).__name__))
                raise error
        self.log.append(RecordedCall(method, args, at))
        self.calls.append((method, *args))

    def _ref(self, address: str) -> MessageRef:
        return MessageRef(address=address, message_id=f"m{next(self._ids)}")

    def _check_length(self, method: str, args: tuple[Any, ...], text: str) -> None:
        """Like the platform, refuse a message longer than the declared limit (logged as a
        failed call)."""
        caps = self._capabilities
        if caps.length(text) > caps.max_message_length:
            self.log.append(RecordedCall(method, args, self._clock(), "ValueError"))
            self._called.set()
            raise ValueError(f"message too long ({caps.length(text)} > {caps.max_message_length})")

    async def send(self, address: AddressLike, text: str) -> MessageRef:
        ref = self._ref(str(address))
        self._check_length("send", (str(address), text, ref.message_id), text)
        self._record("send", str(address), text, ref.message_id)
        self._shown[ref.message_id] = text
        return ref

    async def update(self, ref: MessageRef, text: str) -> None:
        self._check_length("update", (ref.address, text, ref.message_id), text)
        self._record("update", ref.address, text, ref.message_id)
        self._shown[ref.message_id] = text

    async def delete(self, ref: MessageRef) -> None:
        self._record("delete", ref.address, ref.message_id)
        self._shown.pop(ref.message_id, None)

    async def start_stream(self, address: AddressLike, text: str = "") -> MessageRef:
        ref = self._ref(str(address))
        self._record("start_stream", str(address), text, ref.message_id)
        self._shown[ref.message_id] = text
        return ref

    async def append_stream(self, ref: MessageRef, delta: str) -> None:
        self._record("append_stream", ref.address, delta, ref.message_id)
        self._shown[ref.message_id] = self._shown.get(ref.message_id, "") + delta

    async def stop_stream(self, ref: MessageRef, delta: str = "") -> None:
        self._record("stop_stream", ref.address, delta, ref.message_id)
        self._shown[ref.message_id] = self._shown.get(ref.message_id, "") + delta

    async def set_status(self, address: AddressLike, status: str | None) -> None:
        self._record("set_status", str(address), status)

    async def ask_approval(self, request: ApprovalRequest) -> MessageRef:
        ref = self._ref(request.address or "")
        self._record("ask_approval", request.address, request.permission_id)
        self._shown[ref.message_id] = f"Approve {request.tool}? [Allow] [Deny]"
        return ref

    async def update_approval(
        self, ref: MessageRef, request: ApprovalRequest, outcome: ApprovalOutcome
    ) -> None:
        self._record("update_approval", ref.address, request.permission_id, outcome, ref.message_id)
        line = approval_outcome_text(request, outcome, self._capabilities.escape)
        self._shown[ref.message_id] = line

    async def react(self, ref: MessageRef, emoji: str) -> None:
        self._record("react", ref.address, emoji, ref.message_id)

    async def reply_ephemeral(self, address: AddressLike, user: str, text: str) -> None:
        self._record("reply_ephemeral", str(address), user, text)

    async def upload_file(self, address: AddressLike, path: Path, title: str = "") -> MessageRef:
        ref = self._ref(str(address))
        self._record("upload_file", str(address), str(path), title)
        self._shown[ref.message_id] = f"[file {path.name}] {title}".rstrip()
        return ref

    def shown(self, ref: MessageRef) -> str | None:
        """What the message at ``ref`` shows now (None: never sent, or deleted); approval
        cards and files included. Calls that failed changed nothing."""
        return self._shown.get(ref.message_id)

    def texts(self, address: str | None = None) -> list[str]:
        """The text every message shows now (after updates, appends and deletes)."""
        latest: dict[str, str] = {}
        for call in self.calls:
            method = call[0]
            if method == "delete":
                latest.pop(call[2], None)
            elif address is not None and call[1] != address:
                continue
            elif method in ("send", "update", "start_stream"):
                latest[call[3]] = call[2]
            elif method in ("append_stream", "stop_stream"):
                latest[call[3]] = latest.get(call[3], "") + call[2]
        return list(latest.values())


class FakeChatAdapter(ChatAdapter):
    """A chat platform driven by the test; its ``operations`` declare ``capabilities``
    (default ``ChatCapabilities()``) and record every call.

    ``await adapter.dm("hi")`` delivers a direct message, ``await adapter.mention("hi")``
    a group message that mentions the bot, ``await adapter.say("hi")`` a group message
    that does not; each returns the :class:`~hotplex.types.IncomingMessage` it delivered
    (with a fresh event id, message key and ``ref``). ``await adapter.receive(message)``
    delivers any message. Addresses are ``fake:<workspace>/<channel>[/<thread>]``; a DM's
    channel is ``D-<user id>``.
    """

    name = "fake"
    platform = "fake"

    def __init__(
        self, capabilities: ChatCapabilities | None = None, *, workspace: str = "w"
    ) -> None:
        self._operations = FakeMessageOperations(capabilities)
        self._deliver: Callable[[IncomingMessage], Awaitable[None]] | None = None
        self._ready = asyncio.Event()
        self._ids = itertools.count(1)
        self.workspace = workspace
        self.delivered: list[IncomingMessage] = []

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
        self.delivered.append(message)
        await self._deliver(message)

    def message(
        self,
        text: str,
        *,
        channel: str = "C1",
        thread: str | None = None,
        user: str = "fake:U1",
        direct: bool = False,
        mentions_bot: bool = False,
        from_bot: bool = False,
        display_name: str | None = None,
        attachments: tuple[Attachment, ...] = (),
        event_id: str | None = None,
    ) -> IncomingMessage:
        """A message as this platform would deliver it (nothing is delivered)."""
        number = next(self._ids)
        address = f"{self.platform}:{self.workspace}/{channel}"
        if thread is not None:
            address += f"/{thread}"
        return IncomingMessage(
            address=address,
            text=text,
            user=user,
            platform=self.platform,
            event_id=event_id or f"Ev{id(self):x}-{number}",
            message_key=f"{self.platform}:{channel}:{id(self):x}-{number}",
            attachments=attachments,
            ref=MessageRef(address, f"in{number}"),
            direct=direct,
            mentions_bot=mentions_bot,
            from_bot=from_bot,
            display_name=display_name,
        )

    async def dm(self, text: str, *, user: str = "fake:U1", **fields: Any) -> IncomingMessage:
        """Deliver a direct message from ``user``."""
        channel = "D-" + user.rpartition(":")[2]
        message = self.message(text, channel=channel, user=user, direct=True, **fields)
        await self.receive(message)
        return message

    async def mention(self, text: str, *, channel: str = "C1", **fields: Any) -> IncomingMessage:
        """Deliver a group message in ``channel`` that mentions the bot."""
        message = self.message(text, channel=channel, mentions_bot=True, **fields)
        await self.receive(message)
        return message

    async def say(self, text: str, *, channel: str = "C1", **fields: Any) -> IncomingMessage:
        """Deliver a group message in ``channel`` that does not mention the bot."""
        message = self.message(text, channel=channel, **fields)
        await self.receive(message)
        return message


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
