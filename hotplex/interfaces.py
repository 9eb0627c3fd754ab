"""The abstract interfaces plugins implement. All runtime methods are async.

- :class:`Provider` starts :class:`AgentProcess` objects (one per live session).
- :class:`ChatAdapter` connects a chat platform; its :class:`MessageOperations` render
  replies, streams and approval requests.
- :class:`Storage` persists sessions, events, inbound messages, approvals and audit.
- :class:`HookSink` consumes events off the hot path.
- :class:`Middleware` processes inbound messages in an explicit chain.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotplex.address import AddressLike
from hotplex.events import AgentEvent, AuditEvent
from hotplex.records import RouteSpec
from hotplex.stored import ApprovalRecord, AuditRecord, QueuedTurn, SessionRecord

if TYPE_CHECKING:
    from hotplex.outbox import OutboxEntry

from hotplex.types import (
    AgentStartSpec,
    ApprovalOutcome,
    ApprovalRequest,
    ChatCapabilities,
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
    "approval_outcome_text",
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
    def turn(self, prompt: str, *, images: Sequence[Path] = ()) -> AsyncIterator[AgentEvent]:
        """Send one user message and yield the turn's unstamped events, ending with ``done``.

        Tool calls are put to the gate given at start before they run. ``images`` are
        files in the work directory to show the agent with the prompt (PNG, JPEG, GIF or
        WebP; a chat message's image attachments); a provider that cannot show images
        ignores them (the prompt names the files). The engine passes ``images`` only when
        there are some, so a provider written before it keeps working.
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


def approval_outcome_text(
    request: ApprovalRequest, outcome: ApprovalOutcome, escape: Callable[[str], str] = str
) -> str:
    """One line saying how an approval ended, e.g. ``✅ Bash: allowed by slack:U01 (this
    session)``; ``escape`` is applied to what the agent or a person wrote (the tool name,
    the reason). The default of :meth:`MessageOperations.update_approval`."""
    subject = "Prompt" if request.kind == "prompt" else escape(request.tool)
    if outcome.decision == "expired":
        return f"⌛ {subject}: expired, denied (nobody decided in time)"
    icon, verb = ("✅", "allowed") if outcome.decision == "allow" else ("⛔", "denied")
    line = f"{icon} {subject}: {verb}"
    if outcome.by:
        line += f" by {escape(outcome.by)}"
    if outcome.decision == "allow" and outcome.scope == "session":
        line += " (this session)"
    if outcome.reason:
        line += f": {escape(outcome.reason)}"
    return line


class MessageOperations(ABC):
    """What a chat platform can do with messages. Adapters implement what the platform
    offers and declare it, with its limits, in :attr:`capabilities`; core's renderer
    (:mod:`hotplex.chat`) calls only what they declare, within those limits.

    Addresses come as :data:`~hotplex.address.AddressLike` (an ``Address`` or its text):
    ``Address.of(address)`` gives the parsed form. A call the platform refuses for its rate
    limit raises :class:`~hotplex.errors.RateLimitedError` with ``retry_after``.
    """

    @property
    def capabilities(self) -> ChatCapabilities:
        """What the platform can do and its limits. Default: ``ChatCapabilities()`` (edit
        in place, 4000 code points per message, one write per second, no escaping)."""
        return ChatCapabilities()

    @abstractmethod
    async def send(self, address: AddressLike, text: str) -> MessageRef: ...

    @abstractmethod
    async def update(self, ref: MessageRef, text: str) -> None: ...

    @abstractmethod
    async def delete(self, ref: MessageRef) -> None: ...

    async def start_stream(self, address: AddressLike, text: str = "") -> MessageRef:
        """Begin a natively streamed reply that shows ``text``. The renderer calls the
        stream methods only when ``capabilities.streaming == "native"``. Default: ``send``."""
        return await self.send(address, text or "…")

    async def append_stream(self, ref: MessageRef, delta: str) -> None:
        """Add ``delta``, the new part of the text, to the stream (never the whole text
        again)."""
        raise NotImplementedError(f"{type(self).__name__} does not stream natively")

    async def stop_stream(self, ref: MessageRef, delta: str = "") -> None:
        """Add ``delta`` (may be empty), the last part of the text, and end the stream."""
        raise NotImplementedError(f"{type(self).__name__} does not stream natively")

    async def set_status(self, address: AddressLike, status: str | None) -> None:  # noqa: B027
        """Show a short status (typing, thinking, a reaction); None clears it."""

    @abstractmethod
    async def ask_approval(self, request: ApprovalRequest) -> MessageRef:
        """Render an approval request with allow / deny controls."""

    async def update_approval(
        self, ref: MessageRef, request: ApprovalRequest, outcome: ApprovalOutcome
    ) -> None:
        """Show on the card at ``ref`` how ``request`` ended (decided, by whom, or expired),
        without its controls. Default: ``update(ref, ...)`` with one rendered outcome line
        (:func:`approval_outcome_text`)."""
        await self.update(ref, approval_outcome_text(request, outcome, self.capabilities.escape))

    async def react(self, ref: MessageRef, emoji: str) -> None:  # noqa: B027
        """Add a reaction (an emoji name such as ``eyes``) to a message. Default: nothing."""

    async def reply_ephemeral(self, address: AddressLike, user: str, text: str) -> None:
        """Answer ``user`` with a message only they see, where the platform can (a refusal
        of a button press). Default: ``send(address, text)``, seen by everyone there."""
        await self.send(address, text)

    async def upload_file(self, address: AddressLike, path: Path, title: str = "") -> MessageRef:
        raise NotImplementedError(f"{type(self).__name__} cannot upload files")


class ChatAdapter(ABC):
    """A connection to one chat platform. ``run`` delivers IncomingMessages to ``deliver``
    until cancelled; ``operations`` renders the replies.

    ``name`` is the plugin's name for it; ``platform`` is the address platform it owns
    (``slack`` for ``slack:T01/C02``), which the dispatcher and the delivery router use.
    An HTTP-mode adapter (webhook callbacks) returns its routes from :meth:`http_routes`;
    the gateway mounts them for this instance.
    """

    name: str = ""
    platform: str = ""

    @property
    @abstractmethod
    def operations(self) -> MessageOperations: ...

    @abstractmethod
    async def run(self, deliver: Callable[[IncomingMessage], Awaitable[None]]) -> None: ...

    def state(self) -> str:
        """``connected``, ``connecting`` or ``down``; shown by /readyz."""
        return "connected"

    def http_routes(self) -> list[RouteSpec]:
        """Routes this adapter instance serves on the gateway's port. Default: none."""
        return []


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
    """Durable state: sessions, events, queued turns, inbound messages, approvals and audit.

    The built-in backend is SQLAlchemy (SQLite or PostgreSQL, :mod:`hotplex.storage`). Every
    write is committed when the awaited call returns. docs/storage.md has the guarantees.
    """

    @abstractmethod
    async def open(self) -> None:
        """Connect and apply pending migrations."""

    @abstractmethod
    async def close(self) -> None:
        """Disconnect; idempotent."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise StorageError when the backend cannot be reached."""

    @abstractmethod
    async def integrity_check(self) -> list[str]:
        """Problems found in the stored data (SQLite ``integrity_check``); empty when fine."""

    # -- events and audit --------------------------------------------------------------

    @abstractmethod
    async def append_batch(
        self,
        events: Sequence[AgentEvent],
        audit: Sequence[AuditEvent],
        *,
        outbox: Sequence[OutboxEntry] = (),
    ) -> None:
        """Store stamped events and audit events in one transaction; an event whose
        (session_id, seq) is stored already is kept as it was. ``outbox`` rows (see
        :mod:`hotplex.outbox`) go into the same transaction; a backend without an outbox
        raises StorageError when given some (the storage sink only passes them when a
        plugin registered outbox consumers)."""

    @abstractmethod
    async def read_events(
        self, session_id: str, *, since_seq: int = 0, limit: int = 1000
    ) -> list[AgentEvent]:
        """A session's events with ``seq > since_seq`` in seq order (seqs may have gaps)."""

    @abstractmethod
    async def read_audit(
        self,
        *,
        types: Collection[str] | None = None,
        session_id: str | None = None,
        since: float | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditRecord]:
        """Audit events, newest first, filtered; page on with ``before_id`` = last id seen."""

    @abstractmethod
    async def prune(self, older_than: float) -> int:
        """Delete events, audit, finished turns and done inbound older than a Unix time."""

    # -- sessions ----------------------------------------------------------------------

    @abstractmethod
    async def save_session(self, record: SessionRecord) -> None:
        """Insert or replace the session's record (``created_at`` of the first save kept)."""

    @abstractmethod
    async def get_session(self, session_id: str) -> SessionRecord | None:
        """One session's record, or None."""

    @abstractmethod
    async def load_sessions(self) -> list[SessionRecord]:
        """Every stored session record, oldest first."""

    # -- the turn ledger: accepted means stored ----------------------------------------

    @abstractmethod
    async def accept_turn(
        self,
        session_id: str,
        turn_id: str,
        prompt: str,
        *,
        request_id: str | None = None,
        user: str | None = None,
        inbound: IncomingMessage | None = None,
        started: bool = False,
    ) -> None:
        """Record a turn the engine accepted, as queued (or ``started``: its worker takes
        it next), and ``inbound``, the message it answers, as done, in one transaction. A
        second call with the same ``turn_id`` changes nothing. It may return before the
        commit is on disk: see :meth:`synced`."""

    def synced(self) -> Awaitable[None]:
        """Done once every turn accepted so far survives power loss; nothing of a turn is
        published before. This default is done at once: for a backend whose
        ``accept_turn`` returns after its commit."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    @abstractmethod
    async def start_turn(self, turn_id: str) -> None:
        """Mark a queued turn started (its worker took it)."""

    @abstractmethod
    async def end_turn(
        self, turn_id: str, status: str, session: SessionRecord | None = None
    ) -> None:
        """Mark a turn finished with its ``done`` status (ok, error, interrupted, ...) and,
        when given, store ``session`` (as :meth:`save_session`), in one transaction."""

    @abstractmethod
    async def pending_turns(self, session_id: str | None = None) -> list[QueuedTurn]:
        """Turns queued or started but not finished, in the order they were accepted."""

    # -- leases: one holder at a time, with expiry, across processes ------------------

    @abstractmethod
    async def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Hold the lease ``name`` for ``ttl`` seconds when nobody else holds it (it is
        free or expired); True when ``holder`` holds it now (again: a holder's second
        acquire renews). One holder at a time, also across processes sharing the storage."""

    @abstractmethod
    async def renew_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Extend ``holder``'s unexpired lease to ``ttl`` seconds from now; False when it
        lost it (expired, taken over, released, never held): stop the guarded work."""

    @abstractmethod
    async def release_lease(self, name: str, holder: str) -> bool:
        """Give the lease up so another holder can take it at once; False when ``holder``
        did not hold it."""

    # -- approvals ---------------------------------------------------------------------

    @abstractmethod
    async def save_approval(
        self,
        request: ApprovalRequest,
        decision: str | None = None,
        by: str | None = None,
        scope: str | None = None,
    ) -> None:
        """Store an approval request, or its decision (the first decision stored wins)."""

    @abstractmethod
    async def get_approval(self, permission_id: str) -> ApprovalRecord | None:
        """A stored approval request with its decision, or None."""

    # -- inbound messages --------------------------------------------------------------

    @abstractmethod
    async def record_inbound(self, message: IncomingMessage) -> bool:
        """Insert if absent; False when this event id or message key was seen before."""

    @abstractmethod
    async def finish_inbound(self, message: IncomingMessage) -> None:
        """Mark an inbound message done (its turn was accepted or answered)."""

    @abstractmethod
    async def pending_inbound(self) -> list[IncomingMessage]:
        """Inbound messages still in state ``received`` (to replay after a crash), oldest first."""
