"""Delivery to any conversation address, through the adapter that owns its platform.

:class:`Router` (service ``DELIVERY``) is how a plugin posts into a conversation it is not
answering (cron, relay, webhooks)::

    router = ctx.services.get(DELIVERY)
    await router.send("slack:T01/C02", "The nightly build failed.")
    await router.send_file("web:alice/s1", Path("report.pdf"), title="Report")

The address's platform names the adapter (``ChatAdapter.platform``, else the name it was
registered under; ``web`` is the web chat's). Text goes through the adapter's ``escape``
and is split below ``max_message_length`` as the renderer splits answers (code fences
intact); parts are paced by ``min_update_interval`` (one platform's calls one at a time)
and ``max_writes_per_minute``, and a ``RateLimitedError`` is waited out. A platform whose
adapter is not connected yet (start-up, a reconnect) is waited for, bounded: at most
``queue_size`` calls wait per platform and each waits at most ``timeout`` seconds; past
either, :class:`~hotplex.errors.DeliveryError` says which.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from hotplex.address import Address
from hotplex.chat.pacer import Budget, Pacer
from hotplex.chat.routed import RoutedOperations
from hotplex.chat.split import split_text
from hotplex.context import ServiceKey
from hotplex.errors import DeliveryError, RateLimitedError
from hotplex.events import AuditEvent
from hotplex.interfaces import MessageOperations
from hotplex.types import ApprovalRequest, MessageRef

__all__ = ["DELIVERY", "Endpoint", "Router"]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one platform's messages go: its operations, and whether they can be used now
    (an adapter's ``state() == "connected"``)."""

    operations: MessageOperations
    ready: Callable[[], bool] = lambda: True
    state: Callable[[], str] = lambda: "connected"


#: The platform's endpoint if an adapter owns it now (looked up on every call).
Lookup = Callable[[str], "Endpoint | None"]
Audit = Callable[[AuditEvent], Awaitable[None]]


class Router:
    """Sends text, files and approval cards to any address. ``lookup`` finds the
    endpoint of a platform among the running adapters; :meth:`attach` adds one directly
    (the web chat's). Until ``sealed()`` is true (the runtime has started its adapters) a
    platform nobody owns yet is waited for like one not connected; after, it fails at once."""

    def __init__(
        self,
        lookup: Lookup | None = None,
        *,
        sealed: Callable[[], bool] = lambda: True,
        queue_size: int = 100,
        timeout: float = 30.0,
        poll: float = 0.1,
        attempts: int = 5,
        audit: Audit | None = None,
    ) -> None:
        if queue_size < 1 or timeout <= 0 or poll <= 0 or attempts < 1:
            raise ValueError("queue_size, timeout, poll and attempts must be positive")
        self._lookup = lookup
        self._sealed = sealed
        self.queue_size = queue_size
        self.timeout = timeout
        self._poll = poll
        self._attempts = attempts
        self._audit = audit
        self._attached: dict[str, Endpoint] = {}
        self._waiting: dict[str, collections.deque[asyncio.Future[MessageOperations]]] = {}
        self._releasers: dict[str, asyncio.Task[None]] = {}
        self._pacers: dict[str, Pacer] = {}
        self._changed = asyncio.Event()

    # -- endpoints ---------------------------------------------------------------------

    def attach(
        self,
        platform: str,
        operations: MessageOperations,
        *,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        """Deliver ``platform``'s messages through ``operations`` (once ``ready()``)."""
        self._attached[platform] = Endpoint(
            operations, ready, lambda: "connected" if ready() else "connecting"
        )
        self._changed.set()

    def detach(self, platform: str) -> None:
        self._attached.pop(platform, None)

    def endpoint(self, platform: str) -> Endpoint | None:
        found = self._attached.get(platform)
        if found is None and self._lookup is not None:
            found = self._lookup(platform)
        return found

    def waiting(self, platform: str) -> int:
        """How many calls wait for ``platform``'s adapter now."""
        return len(self._waiting.get(platform, ()))

    # -- waiting for an adapter --------------------------------------------------------

    async def wait_for(self, address: str | Address) -> MessageOperations:
        """The operations of the adapter that owns ``address``'s platform, once it is
        connected; DeliveryError when nobody owns it, or when the wait is full or too long."""
        parsed = address if isinstance(address, Address) else Address.parse(address)
        platform = parsed.platform
        found = self.endpoint(platform)
        queue = self._waiting.setdefault(platform, collections.deque())
        if found is not None and found.ready() and not queue:
            return found.operations
        if found is None and self._sealed():
            raise DeliveryError(f"{parsed}: {self._nobody(platform)}")
        if len(queue) >= self.queue_size:
            raise DeliveryError(
                f"{parsed}: {len(queue)} messages already wait for the {platform!r} adapter "
                f"(at most {self.queue_size}); it is {self._state(platform)}"
            )
        waiter: asyncio.Future[MessageOperations] = asyncio.get_running_loop().create_future()
        queue.append(waiter)
        self._start_releaser(platform)
        try:
            async with asyncio.timeout(self.timeout):
                return await waiter
        except TimeoutError:
            raise DeliveryError(
                f"{parsed}: the {platform!r} adapter is still {self._state(platform)} "
                f"after {self.timeout:g} s"
            ) from None
        finally:
            if waiter in queue:
                queue.remove(waiter)

    def _nobody(self, platform: str) -> str:
        known = ", ".join(sorted(self._attached)) or "none attached directly"
        return f"no chat adapter owns the platform {platform!r} (is its plugin enabled? {known})"

    def _state(self, platform: str) -> str:
        found = self.endpoint(platform)
        return "not started" if found is None else found.state()

    def _start_releaser(self, platform: str) -> None:
        task = self._releasers.get(platform)
        if task is None or task.done():
            self._releasers[platform] = asyncio.create_task(
                self._release(platform), name=f"delivery-wait:{platform}"
            )

    async def _release(self, platform: str) -> None:
        """Hand the waiting calls, in order, the operations once the adapter is ready."""
        queue = self._waiting[platform]
        rounds = int(self.timeout / self._poll) + 2  # every waiter gives up by then
        for _ in range(rounds):
            if not queue:
                return
            found = self.endpoint(platform)
            if found is None and self._sealed():
                error = DeliveryError(self._nobody(platform))
                while queue:
                    waiter = queue.popleft()
                    if not waiter.done():
                        waiter.set_exception(error)
                return
            if found is not None and found.ready():
                while queue:
                    waiter = queue.popleft()
                    if not waiter.done():
                        waiter.set_result(found.operations)
                return
            self._changed.clear()
            try:
                async with asyncio.timeout(self._poll):
                    await self._changed.wait()
            except TimeoutError:
                pass

    async def aclose(self) -> None:
        """Stop waiting: every waiting call fails."""
        for task in self._releasers.values():
            task.cancel()
        for platform, queue in self._waiting.items():
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_exception(DeliveryError(f"{platform}: HotPlex is stopping"))

    # -- delivering --------------------------------------------------------------------

    def operations_for(self, address: str | Address) -> MessageOperations:
        """``MessageOperations`` for the platform of ``address`` whose every call waits
        (bounded) for its adapter, as :meth:`wait_for`; pass it to a ``Renderer``. Its
        ``capabilities`` are the adapter's, and raise DeliveryError while no adapter owns
        the platform (``await router.wait_for(address)`` first, at start-up)."""
        parsed = address if isinstance(address, Address) else Address.parse(address)
        return RoutedOperations(self, parsed)

    async def send(self, address: str | Address, text: str) -> MessageRef:
        """Send ``text``, escaped and split within the platform's limits; the first
        message's reference."""
        parsed = address if isinstance(address, Address) else Address.parse(address)
        if not text:
            raise ValueError("nothing to send: the text is empty")
        try:
            operations = await self.wait_for(parsed)
            caps = operations.capabilities
            parts = split_text(caps.escape(text), limit=caps.max_message_length, length=caps.length)
            refs = [await self._send_part(parsed, operations, part.text) for part in parts]
        except Exception as exc:
            await self._failed(parsed, "send", exc)
            raise
        return refs[0]

    async def _send_part(
        self, address: Address, operations: MessageOperations, text: str
    ) -> MessageRef:
        return await self._call(address, operations, lambda: operations.send(str(address), text))

    async def send_file(self, address: str | Address, path: Path, title: str = "") -> MessageRef:
        """Upload the file at ``path`` (its title escaped) to the conversation."""
        parsed = address if isinstance(address, Address) else Address.parse(address)
        try:
            operations = await self.wait_for(parsed)
            caps = operations.capabilities
            if not caps.files:
                raise DeliveryError(f"{parsed}: the {parsed.platform!r} adapter takes no files")
            shown = caps.escape(title)
            return await self._call(
                parsed, operations, lambda: operations.upload_file(str(parsed), Path(path), shown)
            )
        except Exception as exc:
            await self._failed(parsed, "send_file", exc)
            raise

    async def ask_approval(self, request: ApprovalRequest) -> MessageRef | None:
        """Show an approval request in its conversation; None when it has no address."""
        if not request.address:
            return None
        parsed = Address.parse(request.address)
        try:
            operations = await self.wait_for(parsed)
            return await self._call(parsed, operations, lambda: operations.ask_approval(request))
        except Exception as exc:
            await self._failed(parsed, "ask_approval", exc)
            raise

    async def _call(
        self, address: Address, operations: MessageOperations, call: Callable[[], Awaitable[T]]
    ) -> T:
        """One platform call, paced by the platform's interval; a rate-limit answer is
        waited out (``attempts`` tries in all)."""
        pacer = self._pacers.get(address.platform)
        if pacer is None:
            caps = operations.capabilities
            budget = Budget(caps.max_writes_per_minute, burst=caps.write_burst)
            pacer = Pacer(caps.min_update_interval, budget=budget)
            self._pacers[address.platform] = pacer
        for attempt in range(1, self._attempts + 1):
            try:
                return await pacer.run(call)
            except RateLimitedError as exc:
                if attempt == self._attempts:
                    raise
                pacer.defer(exc.retry_after, everyone=True)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _failed(self, address: Address, what: str, exc: Exception) -> None:
        log.warning("delivery to %s failed (%s): %s", address, what, exc)
        if self._audit is not None:
            event = AuditEvent(
                "delivery.failed",
                {"address": str(address), "call": what, "error": str(exc)},
                actor="system",
            )
            try:
                await self._audit(event)
            except Exception:
                log.exception("auditing a failed delivery failed")


DELIVERY: ServiceKey[Router] = ServiceKey("delivery", Router)
