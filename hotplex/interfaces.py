"""The abstract interfaces plugins implement. All runtime methods are async.

- :class:`Provider` starts :class:`AgentProcess` objects (one per live session).
- :class:`ChatAdapter` connects a chat platform; its :class:`MessageOperations` render
  replies, streams and approval requests.
- :class:`Storage` persists sessions, events, inbound messages, approvals and audit.
- :class:`HookSink` consumes events off the hot path.
- :class:`Middleware` processes inbound messages in an explicit chain.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hotplex.events import AgentEvent, AuditEvent
from hotplex.types import (
    AgentStartSpec,
    ApprovalRequest,
    IncomingMessage,
    MessageRef,
    ToolDecision,
    ToolRequest,
)

__all__ = [
    "AgentProcess",
    "ChatAdapter",
    "HookSink",
    "MessageOperations",
    "Middleware",
    "MiddlewareContext",
    "Next",
    "Provider",
    "Storage",
    "ToolGate",
]

#: Called by a provider for every tool call; the engine's policy chain and approvals answer.
ToolGate = Callable[[ToolRequest], Awaitable[ToolDecision]]


class AgentProcess(ABC):
    """One live agent session (a hot CLI process, or a session on a shared server)."""

    @property
    @abstractmethod
    def alive(self) -> bool:
        """False once the process exited or was closed."""

    @property
    def pid(self) -> int | None:
        """The OS process id, when the session owns a process."""
        return None

    @abstractmethod
    def turn(self, prompt: str) -> AsyncIterator[AgentEvent]:
        """Send one user message and yield the turn's unstamped events, ending with ``done``.

        Tool calls are put to the gate given at start before they run.
        """

    @abstractmethod
    async def interrupt(self) -> None:
        """Stop the running turn (pending permissions are cancelled); no-op when idle."""

    @abstractmethod
    async def close(self, grace: float = 5.0) -> None:
        """Stop the session and release everything it holds; idempotent."""

    async def control(self, subtype: str, **fields: Any) -> Mapping[str, Any]:
        """Send a provider-specific control request (``set_model``, ...)."""
        raise NotImplementedError(f"{type(self).__name__} does not support {subtype!r}")


class Provider(ABC):
    """Starts agent sessions of one kind (Claude Code, OpenCode, ...)."""

    name: str = ""

    @abstractmethod
    async def start(self, spec: AgentStartSpec, gate: ToolGate) -> AgentProcess:
        """Start (or resume, when ``spec.resume``) a session; raises AgentStartError."""

    def profile(self) -> str:
        """A key of everything that makes two spawned processes interchangeable (binary,
        flags); the engine keeps prewarmed spares per profile and work directory."""
        return self.name

    async def aclose(self) -> None:  # noqa: B027 - optional hook, default does nothing
        """Release shared resources (a shared server, a client session)."""


class MessageOperations(ABC):
    """What a chat platform can do with messages. Adapters implement what the platform
    offers; ``start_stream``/``append_stream``/``stop_stream`` may fall back to throttled
    ``update`` calls."""

    @abstractmethod
    async def send(self, address: str, text: str) -> MessageRef: ...

    @abstractmethod
    async def update(self, ref: MessageRef, text: str) -> None: ...

    @abstractmethod
    async def delete(self, ref: MessageRef) -> None: ...

    async def start_stream(self, address: str, text: str = "") -> MessageRef:
        return await self.send(address, text or "…")

    async def append_stream(self, ref: MessageRef, text_so_far: str) -> None:
        await self.update(ref, text_so_far)

    async def stop_stream(self, ref: MessageRef, final_text: str) -> None:
        await self.update(ref, final_text)

    async def set_status(self, address: str, status: str | None) -> None:  # noqa: B027
        """Show a short status (typing, thinking, a reaction); None clears it."""

    @abstractmethod
    async def ask_approval(self, request: ApprovalRequest) -> MessageRef:
        """Render an approval request with allow / deny controls."""

    async def upload_file(self, address: str, path: Path, title: str = "") -> MessageRef:
        raise NotImplementedError(f"{type(self).__name__} cannot upload files")


class ChatAdapter(ABC):
    """A connection to one chat platform. ``run`` delivers IncomingMessages to ``deliver``
    until cancelled; ``operations`` renders the replies."""

    name: str = ""

    @property
    @abstractmethod
    def operations(self) -> MessageOperations: ...

    @abstractmethod
    async def run(self, deliver: Callable[[IncomingMessage], Awaitable[None]]) -> None: ...

    def state(self) -> str:
        """``connected``, ``connecting`` or ``down``; shown by /readyz."""
        return "connected"


class HookSink(ABC):
    """Consumes events off the hot path, on its own bounded queue (see SinkSpec)."""

    @abstractmethod
    async def handle(self, batch: Sequence[AgentEvent | AuditEvent]) -> None: ...

    async def aclose(self) -> None:  # noqa: B027
        """Flush and release resources."""


class MiddlewareContext:
    """What flows through the inbound chain: the message plus facts middlewares add."""

    __slots__ = ("facts", "message", "reply")

    def __init__(self, message: IncomingMessage) -> None:
        self.message = message
        self.facts: dict[str, Any] = {}
        self.reply: str | None = None


Next = Callable[[MiddlewareContext], Awaitable[None]]


class Middleware(ABC):
    """One step of the inbound chain: call ``await call_next(ctx)`` to continue, or return
    to stop (setting ``ctx.reply`` to answer the user)."""

    @abstractmethod
    async def process(self, ctx: MiddlewareContext, call_next: Next) -> None: ...


class Storage(ABC):
    """Durable state. The built-in backend is SQLAlchemy (SQLite or PostgreSQL)."""

    @abstractmethod
    async def open(self) -> None:
        """Connect and run migrations."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> None:
        """Raise StorageError when the backend cannot be reached."""

    @abstractmethod
    async def append_events(self, events: Sequence[AgentEvent]) -> None: ...

    @abstractmethod
    async def read_events(
        self, session_id: str, *, since_seq: int = 0, limit: int = 1000
    ) -> list[AgentEvent]: ...

    @abstractmethod
    async def append_audit(self, events: Sequence[AuditEvent]) -> None: ...

    @abstractmethod
    async def save_session(self, record: Mapping[str, Any]) -> None: ...

    @abstractmethod
    async def load_sessions(self) -> list[dict[str, Any]]: ...

    @abstractmethod
    async def record_inbound(self, message: IncomingMessage) -> bool:
        """Insert if absent; False when this event id or message key was seen before."""

    @abstractmethod
    async def finish_inbound(self, message: IncomingMessage) -> None: ...
