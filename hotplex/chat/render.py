"""The renderer: one turn's AgentEvent stream as MessageOperations calls, within the
limits the adapter declares in its :class:`~hotplex.types.ChatCapabilities`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass, field

import jinja2

from hotplex.chat.delivery import Delivery, Write
from hotplex.chat.pacer import Pacer
from hotplex.chat.status import FOOTER_TEMPLATE, TurnStatus, render_footer
from hotplex.errors import RateLimitedError, StoppedByUserError
from hotplex.events import AgentEvent
from hotplex.interfaces import MessageOperations
from hotplex.types import MessageRef

__all__ = ["Rendered", "Renderer"]

log = logging.getLogger(__name__)
_MAX_BACKOFF = 8.0


@dataclass
class Rendered:
    """What a renderer delivered: its messages, the final (escaped) text and footer, and
    how many writes failed on the way (each retried or folded into a later write)."""

    refs: list[MessageRef] = field(default_factory=list)
    text: str = ""
    footer: str = ""
    failures: int = 0
    stopped: bool = False  # the user stopped the reply on the platform


class Renderer:
    """Renders one turn into one conversation.

    Text deltas are coalesced: a write carries everything that arrived while the previous
    one waited for its turn (:class:`~hotplex.chat.pacer.Pacer`: ``min_update_interval``
    apart, and within the adapter's shared :class:`~hotplex.chat.pacer.Budget`, where a
    write that starts a message goes ahead of other conversations' updates); what a write
    sends is decided when its turn comes, so it carries everything so far. A write that
    fails is not repeated as such: what it carried is folded into the next one, after
    ``retry_after`` for a :class:`~hotplex.errors.RateLimitedError` (which holds back every
    conversation of the platform). When the turn ends, the exact final text and the usage
    footer are written with up to ``attempts`` tries, falling back from a native stream to
    ``update`` and from ``update`` to a new message; the last error is raised if all of them fail.

    A write that raises :class:`~hotplex.errors.StoppedByUserError` (the user stopped the
    reply on the platform) ends the writing: nothing more is written for the turn, not even
    its final text (a status shown is cleared at its end), and ``on_stop`` is awaited once
    (the chat bridge interrupts the turn).
    """

    def __init__(
        self,
        operations: MessageOperations,
        address: str,
        *,
        templates: jinja2.Environment | None = None,
        footer_template: str = FOOTER_TEMPLATE,
        pacer: Pacer | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        attempts: int = 6,
        backoff: float = 0.5,
        call_timeout: float = 30.0,
        on_stop: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        caps = operations.capabilities
        self._pacer = pacer or Pacer(caps.min_update_interval, clock=clock, sleep=sleep)
        self._delivery = Delivery(operations, address, caps, clock)
        self._templates = templates
        self._footer_template = footer_template
        self._attempts = attempts
        self._backoff = backoff
        self._call_timeout = call_timeout
        self._blocks: list[str] = []
        self._current: list[str] = []  # the deltas of the block being streamed
        self._status = TurnStatus()
        self._usage: dict[str, object] | None = None
        self._done: dict[str, object] | None = None
        self._error: dict[str, object] | None = None
        self._changed = asyncio.Event()
        self._closing = False
        self._streak = 0
        self._last_error: Exception | None = None
        self._on_stop = on_stop
        self.result = Rendered()

    # -- events --------------------------------------------------------------------------

    def feed(self, event: AgentEvent) -> None:
        """Take one event of the turn (never waits)."""
        kind, data = event.type, event.data
        if kind == "text_delta":
            self._current.append(str(data["text"]))
        elif kind == "text":
            self._blocks.append(str(data["text"]))
            self._current.clear()
        elif kind == "usage":
            self._usage = dict(data)
        elif kind == "error":
            self._error = dict(data)
        elif kind == "done":
            self._done = dict(data)
        changed = self._status.apply(event) or kind in ("text_delta", "text")
        if changed:
            self._changed.set()

    def text(self) -> str:
        """The answer so far: the complete blocks, then the one being streamed."""
        blocks = [*self._blocks, "".join(self._current)]
        return "\n\n".join(block for block in blocks if block)

    # -- the turn ------------------------------------------------------------------------

    async def render(self, events: AsyncIterable[AgentEvent]) -> Rendered:
        """Render every event of ``events`` as it comes, then the final text and footer.
        The final text is written even when ``events`` raises (the error is re-raised)."""
        writer = asyncio.create_task(self._write_progress())
        try:
            async for event in events:
                self.feed(event)
        finally:
            self._closing = True
            self._changed.set()
            await writer
            await self._write_final()
        return self.result

    async def _write_progress(self) -> None:
        while not self._closing:
            await self._changed.wait()
            self._changed.clear()
            while not self._closing:
                await self._pacer.ready()
                if self._closing or not await self._step(None):
                    break

    async def _step(self, footer: str | None) -> bool:
        """Make the next write the state needs (``footer``: None while the turn runs, the
        final footer once it ended); False when none is needed."""

        def pick() -> Write | None:
            if self.result.stopped:  # only the status is cleared, at the end
                return self._delivery.clear_status() if footer is not None else None
            return self._delivery.next_write(self.text(), footer)

        if not self.result.stopped:
            self._delivery.status = None if footer is not None else self._status.line
        if pick() is None:
            return False
        first = self._delivery.starts_message and not self.result.stopped

        async def write() -> None:
            current = pick()  # all the text by now
            if current is not None:
                await asyncio.wait_for(current(), self._call_timeout)

        try:
            await self._pacer.run(write, first=first)
        except StoppedByUserError:
            await self._stopped()
        except RateLimitedError as error:
            self._failed(error, error.retry_after, everyone=True)
        except Exception as error:
            self._failed(error, min(self._backoff * 2**self._streak, _MAX_BACKOFF))
        else:
            self._streak = 0
        return True

    async def _stopped(self) -> None:
        """The user stopped the reply: no more writes; the turn is interrupted."""
        self.result.stopped = True
        self._closing = True
        log.info("the user stopped the reply; interrupting the turn")
        if self._on_stop is not None:
            try:
                await asyncio.wait_for(self._on_stop(), self._call_timeout)
            except Exception:
                log.exception("interrupting a turn the user stopped failed")

    def _failed(self, error: Exception, delay: float, *, everyone: bool = False) -> None:
        """A write failed: this renderer waits ``delay`` (``everyone``: a rate limit holds
        back every conversation of the platform)."""
        self.result.failures += 1
        self._streak += 1
        self._last_error = error
        self._delivery.failed()
        self._pacer.defer(delay, everyone=everyone)
        log.warning("chat write failed (%s); retried or folded into the next one", error)

    async def _write_final(self) -> None:
        footer = self._footer()
        text = self.text()
        budget = self._attempts
        for _ in range(10_000 + 4 * len(text)):  # a few writes per message at most
            failures = self.result.failures
            if not await self._step(footer):
                break
            if self.result.failures > failures:
                budget -= 1
                if budget <= 0 and self._last_error is not None:
                    raise self._last_error
        self.result.refs = self._delivery.refs()
        self.result.text = self._delivery.escaped(text)
        self.result.footer = footer

    def _footer(self) -> str:
        """The usage footer; empty without templates, or when the template fails (the
        answer matters more than its footer)."""
        if self._templates is None:
            return ""
        try:
            return render_footer(
                self._templates,
                usage=self._usage,
                done=self._done,
                error=self._error,
                template=self._footer_template,
            )
        except jinja2.TemplateError:
            log.exception("the footer template %s failed", self._footer_template)
            return ""
