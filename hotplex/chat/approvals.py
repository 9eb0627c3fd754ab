"""Approvals in chat: every approval request of a chat conversation becomes a card there,
its buttons decide through one entry point, and the card shows how it ended.

- **Shown.** Each :class:`~hotplex.types.ApprovalRequest` the engine opens with an address
  (the conversation it came from, or the ``route_to`` conversation of an unattended
  session) is posted through the delivery router (``DELIVERY.ask_approval``: the adapter
  that owns the address's platform, waited for while it connects), off the request's path
  (the agent does not wait for the platform). The card's reference is audited
  (``approval.shown``), so a restart can find it.
- **Decided.** The adapter's button callback calls :meth:`ChatApprovals.decide` (through
  ``ChatBridge.decide``) with the decision, the scope and who pressed. Only the request's
  approvers decide: anyone else gets a refusal only they see (``reply_ephemeral``); a
  second press, a press after a timeout or a restart gets how it ended (``already decided:
  allowed by slack:U01``). A deny's ``reason`` reaches the agent.
- **Closed.** Every outcome (a decision here or elsewhere, a timeout, an interrupt, a
  restart) updates the card (``update_approval``: the outcome and who decided, no buttons)
  and is audited (``approval.closed``). At start, cards an earlier run showed and never
  closed are closed with how their request ended (expired, when nobody decided).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from hotplex.context import ServiceKey
from hotplex.engine.approvals import Approvals, Decision, describe
from hotplex.errors import AlreadyDecidedError, DeliveryError, NotAuthorizedError
from hotplex.events import AuditEvent
from hotplex.identity import is_identity
from hotplex.interfaces import MessageOperations, Storage
from hotplex.types import ApprovalOutcome, ApprovalRequest, MessageRef

__all__ = ["CHAT_APPROVALS", "ChatApprovals", "Conversations", "outcome_of"]

log = logging.getLogger(__name__)

Audit = Callable[[AuditEvent], Awaitable[None]]


class Conversations(Protocol):
    """Where cards go: the delivery router (service ``DELIVERY``) is one."""

    async def ask_approval(self, request: ApprovalRequest) -> MessageRef | None: ...

    async def wait_for(self, address: str) -> MessageOperations: ...


SHOWN = "approval.shown"
CLOSED = "approval.closed"
REFUSED = "You may not decide this request: only its approvers can."
UNKNOWN = "This approval request is not known any more."


def outcome_of(decision: Decision) -> ApprovalOutcome:
    """What a card shows of a decision: nobody deciding in time (or before a restart) is
    ``expired``."""
    if decision.expired:
        return ApprovalOutcome("expired", None, decision.scope, decision.reason)
    return ApprovalOutcome(decision.decision, decision.by, decision.scope, decision.reason)


@dataclass
class _Card:
    request: ApprovalRequest
    posted: asyncio.Future[tuple[MessageOperations, MessageRef] | None]


class ChatApprovals:
    """Cards for the approval requests of chat conversations (see the module docstring).

    ``conversations`` shows the cards and finds the adapter's operations (the delivery
    router); ``audit`` stores the card references (``approval.shown`` /
    ``approval.closed``) that ``storage`` reads back at start; ``call_timeout`` bounds each
    platform call."""

    def __init__(
        self,
        approvals: Approvals,
        *,
        conversations: Conversations,
        audit: Audit | None = None,
        storage: Storage | None = None,
        call_timeout: float = 30.0,
    ) -> None:
        self._approvals = approvals
        self._conversations = conversations
        self._audit = audit
        self._storage = storage
        self._call_timeout = call_timeout
        self._cards: dict[str, _Card] = {}
        self._where: dict[str, str] = {}  # permission id -> the card's address (recent)
        self._tasks: set[asyncio.Future[Any]] = set()
        self._unsubscribe: list[Callable[[], None]] = []

    # -- life ------------------------------------------------------------------------

    async def start(self) -> None:
        """Follow the engine's requests and outcomes; close what an earlier run left."""
        self._unsubscribe = [
            self._approvals.subscribe(self._opened),
            self._approvals.on_decided(self._decided),
        ]
        self._spawn(self._recover())

    async def aclose(self, grace: float = 5.0) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _call(self, call: Awaitable[object]) -> object:
        return await asyncio.wait_for(call, self._call_timeout)

    async def _emit(self, kind: str, request: ApprovalRequest, ref: MessageRef) -> None:
        if self._audit is None:
            return
        data = {
            "permission_id": request.permission_id,
            "address": ref.address,
            "message_id": ref.message_id,
        }
        try:
            await self._audit(AuditEvent(kind, data, session_id=request.session_id))
        except Exception:
            log.exception("auditing %s of %s failed", kind, request.permission_id)

    # -- showing and closing cards ---------------------------------------------------

    async def _opened(self, request: ApprovalRequest) -> None:
        if request.address is None:
            return
        posted = asyncio.ensure_future(self._post(request))
        self._tasks.add(posted)
        posted.add_done_callback(self._tasks.discard)
        self._cards[request.permission_id] = _Card(request, posted)
        self._remember(request.permission_id, request.address)

    async def _operations_for(self, address: str) -> MessageOperations | None:
        try:
            return await self._conversations.wait_for(address)
        except (DeliveryError, ValueError) as exc:  # no adapter owns it, or not in time
            log.info("no chat card in %s: %s", address, exc)
            return None

    async def _post(self, request: ApprovalRequest) -> tuple[MessageOperations, MessageRef] | None:
        assert request.address is not None
        try:
            operations = await self._operations_for(request.address)
            if operations is None:
                return None
            ref = await self._call(self._conversations.ask_approval(request))
        except Exception:
            log.exception("showing approval request %s failed", request.permission_id)
            return None
        if not isinstance(ref, MessageRef):
            return None
        self._remember(request.permission_id, ref.address)
        await self._emit(SHOWN, request, ref)
        return operations, ref

    async def _decided(self, request: ApprovalRequest, decision: Decision) -> None:
        card = self._cards.pop(request.permission_id, None)
        if card is not None:
            self._spawn(self._close(card, outcome_of(decision)))

    async def _close(self, card: _Card, outcome: ApprovalOutcome) -> None:
        posted = await card.posted
        if posted is not None:
            operations, ref = posted
            await self._update(operations, ref, card.request, outcome)

    async def _update(
        self,
        operations: MessageOperations,
        ref: MessageRef,
        request: ApprovalRequest,
        outcome: ApprovalOutcome,
    ) -> None:
        try:
            await self._call(operations.update_approval(ref, request, outcome))
        except Exception:
            log.exception("updating the card of %s failed", request.permission_id)
            return
        await self._emit(CLOSED, request, ref)

    def _remember(self, permission_id: str, address: str) -> None:
        self._where[permission_id] = address
        if len(self._where) > 10_000:
            self._where.pop(next(iter(self._where)))

    # -- the buttons -----------------------------------------------------------------

    async def decide(
        self,
        permission_id: str,
        decision: Literal["allow", "deny"],
        *,
        by: str,
        scope: Literal["once", "session"] = "once",
        reason: str | None = None,
    ) -> ApprovalOutcome:
        """Apply a button press of ``by`` (a namespaced identity, ``slack:U01``) and return
        the outcome that stands: this decision, or how the request had already ended (then
        ``by`` is told so, only to them; an id nobody knows is ``expired``). Raises
        NotAuthorizedError when ``by`` may not decide (after telling them); the card
        updates itself with the outcome."""
        request = self._approvals.get(permission_id)
        where = self._where.get(permission_id) or (request.address if request else None)
        if request is None:
            return await self._late(permission_id, where, by)
        if not is_identity(by) or not self._approvals.may_decide(request, by):
            await self._tell(where, by, REFUSED)
            raise NotAuthorizedError(REFUSED)
        try:
            decided = await self._approvals.decide(
                permission_id, decision, by=by, scope=scope, reason=reason
            )
        except AlreadyDecidedError:  # the other press got there first
            return await self._late(permission_id, where, by)
        return outcome_of(decided)

    async def _late(self, permission_id: str, where: str | None, by: str) -> ApprovalOutcome:
        earlier = await self._approvals.decision_of(permission_id)
        if earlier is None:
            await self._tell(where, by, UNKNOWN)
            return ApprovalOutcome("expired", None, "once", "unknown request")
        await self._tell(where, by, describe(earlier))
        return outcome_of(earlier)

    async def _tell(self, address: str | None, user: str, text: str) -> None:
        if address is None:
            return
        try:
            operations = await self._operations_for(address)
            if operations is not None:
                await self._call(operations.reply_ephemeral(address, user, text))
        except Exception:
            log.exception("telling %s about an approval failed", user)

    # -- after a restart -------------------------------------------------------------

    async def _recover(self) -> None:
        try:
            closed = await self.recover()
        except Exception:
            log.exception("closing the approval cards an earlier run left failed")
            return
        if closed:
            log.info("closed %d approval cards an earlier run left open", closed)

    async def recover(self, *, pages: int = 10, page: int = 100) -> int:
        """Close the cards an earlier run showed and never closed (the newest ``pages`` x
        ``page`` card records): each with how its request ended, expired when nobody
        decided. Returns how many were closed."""
        if self._storage is None:
            return 0
        closed: set[str] = set()
        left: list[dict[str, str]] = []
        before: int | None = None
        for _ in range(pages):
            records = await self._storage.read_audit(
                types=(SHOWN, CLOSED), limit=page, before_id=before
            )
            for record in records:  # newest first: a card's close comes before its showing
                data = record.event.data
                if record.event.type == CLOSED:
                    closed.add(data["permission_id"])
                elif data["permission_id"] not in closed:
                    left.append(data)
            if len(records) < page:
                break
            before = records[-1].id
        count = 0
        for data in left:
            count += await self._close_left(data)
        return count

    async def _close_left(self, data: dict[str, str]) -> int:
        permission_id = data["permission_id"]
        if self._approvals.get(permission_id) is not None or self._storage is None:
            return 0  # opened by this run
        record = await self._storage.get_approval(permission_id)
        decision = await self._approvals.decision_of(permission_id)
        if record is None or decision is None:
            return 0
        self._remember(permission_id, data["address"])
        operations = await self._operations_for(data["address"])
        if operations is None:
            return 0
        ref = MessageRef(address=data["address"], message_id=data["message_id"])
        await self._update(operations, ref, record.request, outcome_of(decision))
        return 1


#: The runtime's approvals in chat.
CHAT_APPROVALS = ServiceKey("chat_approvals", ChatApprovals)
