"""Approvals: a person decides whether a tool call (or a WAF ``ask`` prompt) goes ahead.

A request is decided exactly once, by an authorized approver, with scope ``once`` or
``session``; nobody deciding within ``security.approval_timeout`` denies it (``by:
timeout``). Chat adapters, the gateway and the web chat only render requests
(``subscribe``), answer them (``decide``) and show the outcome (``on_decided``, told of
every outcome: a decision, a timeout, an interrupt, a request a restart left behind); this
module owns the outcome.

A request stored by an earlier run of HotPlex and never decided cannot go ahead any more
(the turn or the message that waited for it is gone): the first look at it
(:meth:`Approvals.decision_of`, or ``decide``) records it as expired (``by: restart``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hotplex.errors import AlreadyDecidedError, ApprovalError, NotAuthorizedError
from hotplex.events import AuditEvent
from hotplex.identity import ADMIN, ANYONE
from hotplex.interfaces import Storage
from hotplex.types import ApprovalRequest

__all__ = [
    "ADMIN",
    "ANYONE",
    "RESTART",
    "TIMEOUT",
    "Approvals",
    "Decided",
    "Decision",
    "describe",
]

log = logging.getLogger(__name__)

#: Who "decided" a request nobody answered in time.
TIMEOUT = "timeout"
#: Who "decided" a request an earlier run of HotPlex left undecided.
RESTART = "restart"

Audit = Callable[[AuditEvent], Awaitable[None]]
Listener = Callable[[ApprovalRequest], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Decision:
    decision: Literal["allow", "deny"]
    scope: Literal["once", "session"]
    by: str
    reason: str | None = None

    @property
    def expired(self) -> bool:
        """Nobody decided: it timed out, or a restart left it behind (a deny)."""
        return self.by in (TIMEOUT, RESTART)


#: Told of every outcome, with the request it decides.
Decided = Callable[[ApprovalRequest, Decision], Awaitable[None]]


@dataclass
class _Pending:
    request: ApprovalRequest
    future: asyncio.Future[Decision]


class Approvals:
    def __init__(
        self,
        *,
        timeout: float,
        audit: Audit | None = None,
        store: Storage | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.timeout = timeout
        self._audit = audit
        self._store = store
        self._clock = clock
        self._pending: dict[str, _Pending] = {}
        self._decided: dict[str, Decision] = {}
        self._listeners: list[Listener] = []
        self._decided_listeners: list[Decided] = []
        self._ids = itertools.count(1)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` for every new request (to render it); returns an unsubscribe.
        It is awaited before the request is published: keep it short (start a task)."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def on_decided(self, listener: Decided) -> Callable[[], None]:
        """Call ``listener(request, decision)`` for every outcome: a person's decision, a
        timeout, a cancelled wait, a request a restart left behind (to update what showed
        it); returns an unsubscribe. Awaited inside ``decide``: keep it short."""
        self._decided_listeners.append(listener)
        return lambda: self._decided_listeners.remove(listener)

    def pending(self, session_id: str | None = None) -> list[ApprovalRequest]:
        return [
            p.request
            for p in self._pending.values()
            if session_id is None or p.request.session_id == session_id
        ]

    def get(self, permission_id: str) -> ApprovalRequest | None:
        pending = self._pending.get(permission_id)
        return pending.request if pending else None

    async def _emit(
        self, kind: str, request: ApprovalRequest, actor: str | None, data: Mapping[str, Any]
    ) -> None:
        if self._audit is None:
            return
        payload = {
            "permission_id": request.permission_id,
            "kind": request.kind,
            "tool": request.tool,
            **data,
        }
        await self._audit(AuditEvent(kind, payload, session_id=request.session_id, actor=actor))

    async def open(
        self,
        *,
        kind: Literal["tool", "prompt"],
        session_id: str,
        address: str | None,
        tool: str,
        input: Mapping[str, Any],
        reason: str | None = None,
        approvers: Collection[str] = (ANYONE,),
        scopes: tuple[str, ...] = ("once", "session"),
    ) -> ApprovalRequest:
        """Register a request (its ``permission_id`` is unguessable) and announce it."""
        now = self._clock()
        request = ApprovalRequest(
            permission_id=f"perm_{next(self._ids)}_{secrets.token_hex(8)}",
            kind=kind,
            session_id=session_id,
            address=address,
            tool=tool,
            input=input,
            reason=reason,
            scopes=scopes,
            approvers=tuple(approvers),
            created_at=now,
            expires_at=now + self.timeout,
        )
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._pending[request.permission_id] = _Pending(request, future)
        if self._store is not None:
            await self._store.save_approval(request)
        await self._emit(
            "approval.requested",
            request,
            None,
            {"input": dict(input), "reason": reason, "approvers": list(approvers)},
        )
        for listener in list(self._listeners):
            try:
                await listener(request)
            except Exception:
                log.exception("an approval listener failed")
        return request

    async def wait(self, request: ApprovalRequest) -> Decision:
        """Wait for the decision; deny when it expires or the wait is cancelled."""
        pending = self._pending.get(request.permission_id)
        if pending is None:
            return self._decided[request.permission_id]
        remaining = max(0.0, request.expires_at - self._clock())
        try:
            return await asyncio.wait_for(asyncio.shield(pending.future), remaining)
        except TimeoutError:
            with contextlib.suppress(AlreadyDecidedError):  # decided at the last moment
                return await self._finish(
                    request.permission_id,
                    Decision("deny", "once", TIMEOUT, f"nobody answered within {self.timeout:g}s"),
                )
            return self._decided[request.permission_id]
        except asyncio.CancelledError:
            with contextlib.suppress(ApprovalError):
                await self._finish(
                    request.permission_id, Decision("deny", "once", "system", "cancelled")
                )
            raise

    async def expire_pending(self, reason: str) -> None:
        """Expire every pending request (``by: restart``): HotPlex is stopping, and what
        waits for them will not be there to go on."""
        for permission_id in list(self._pending):
            with contextlib.suppress(AlreadyDecidedError):
                await self._finish(permission_id, Decision("deny", "once", RESTART, reason))

    def may_decide(self, request: ApprovalRequest, by: str) -> bool:
        return by == ADMIN or ANYONE in request.approvers or by in request.approvers

    async def decide(
        self,
        permission_id: str,
        decision: Literal["allow", "deny"],
        *,
        by: str,
        scope: Literal["once", "session"] = "once",
        reason: str | None = None,
    ) -> Decision:
        """Decide a pending request; raises NotAuthorizedError, AlreadyDecidedError (its
        message says how and by whom; a request a restart left behind is expired now), or
        KeyError for an id nobody ever opened."""
        if decision not in ("allow", "deny"):
            raise ApprovalError(f"decision must be allow or deny, not {decision!r}")
        pending = self._pending.get(permission_id)
        if pending is None:
            earlier = await self.decision_of(permission_id)
            if earlier is None:
                raise KeyError(permission_id)
            raise AlreadyDecidedError(describe(earlier))
        if scope not in pending.request.scopes:
            raise ApprovalError(f"scope must be one of {list(pending.request.scopes)}")
        if not self.may_decide(pending.request, by):
            raise NotAuthorizedError("You are not allowed to decide this request.")
        return await self._finish(permission_id, Decision(decision, scope, by, reason))

    async def decision_of(self, permission_id: str) -> Decision | None:
        """How a request that is no longer pending was decided: remembered, else stored.
        A stored request that was never decided (an earlier run of HotPlex left it) is
        recorded as expired now (``by: restart``, listeners told). None: pending or unknown."""
        if permission_id in self._pending:
            return None
        known = self._decided.get(permission_id)
        if known is not None or self._store is None:
            return known
        record = await self._store.get_approval(permission_id)
        if record is None:
            return None
        if record.decision is None:
            expired = Decision("deny", "once", RESTART, "HotPlex restarted before anyone decided")
            return await self._record(record.request, expired)
        scope: Literal["once", "session"] = "session" if record.scope == "session" else "once"
        outcome: Literal["allow", "deny"] = "allow" if record.decision == "allow" else "deny"
        return self._remember(permission_id, Decision(outcome, scope, record.decided_by or "?"))

    def _remember(self, permission_id: str, decision: Decision) -> Decision:
        self._decided[permission_id] = decision
        if len(self._decided) > 10_000:  # remember recent ids only, for the error message
            self._decided.pop(next(iter(self._decided)))
        return decision

    async def _finish(self, permission_id: str, decision: Decision) -> Decision:
        pending = self._pending.pop(permission_id, None)
        if pending is None:
            earlier = self._decided.get(permission_id)
            raise AlreadyDecidedError(
                describe(earlier) if earlier else "This request was already decided."
            )
        if not pending.future.done():
            pending.future.set_result(decision)
        return await self._record(pending.request, decision)

    async def _record(self, request: ApprovalRequest, decision: Decision) -> Decision:
        """Remember, store, audit and announce an outcome."""
        permission_id = request.permission_id
        self._remember(permission_id, decision)
        if self._store is not None:
            try:
                await self._store.save_approval(
                    request, decision.decision, decision.by, decision.scope
                )
            except Exception:  # the decision stands; its record is best effort
                log.exception("storing the decision of %s failed", permission_id)
        await self._emit(
            "approval.decided",
            request,
            decision.by,
            {"decision": decision.decision, "scope": decision.scope, "reason": decision.reason},
        )
        for listener in list(self._decided_listeners):
            try:
                await listener(request, decision)
            except Exception:
                log.exception("an approval decision listener failed")
        return decision


def describe(decision: Decision) -> str:
    """One line saying how a request ended, for the person who answers it too late."""
    if decision.by == RESTART:
        return "This request expired: HotPlex restarted before anyone decided."
    if decision.by == TIMEOUT:
        return "This request expired: nobody decided in time (it was denied)."
    verb = "allowed" if decision.decision == "allow" else "denied"
    return f"This request was already decided: {verb} by {decision.by}."
