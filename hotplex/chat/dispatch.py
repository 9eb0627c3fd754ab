"""The dispatcher: one path from a chat adapter's message to a rendered answer.

:meth:`ChatBridge.handle` takes what an adapter's ``deliver`` gets and runs it through::

    inbound log and dedup (100) -> access (200) -> WAF (300) -> busy (400)   the middleware chain
    -> chat commands -> session key by the platform's scope
    -> attachments (saved into the session's work directory) -> engine.execute -> Renderer

``ctx.reply`` (a refusal, a command's answer, "busy") is sent to the conversation through
the adapter's ``MessageOperations``. ``handle`` returns once the message's fate is known:
its turn accepted (the answer is rendered in the background), answered, refused, dropped as
a duplicate, or waiting for a person (a WAF ``ask`` on the prompt); it never waits for the
answer itself, so an adapter's receive loop keeps going.

The runtime wires every enabled adapter's ``deliver`` here and runs stored, unfinished
messages through it again after a crash (``replay=True``); turns the engine recovered at
start-up (queued ones run again, started ones reported as interrupted) are rendered into
their conversations once the adapters are up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from hotplex.chat.attachments import Received, receive_attachments
from hotplex.chat.pacer import Budget, Pacer
from hotplex.chat.render import Renderer
from hotplex.chat.scope import conversation_key, default_access
from hotplex.errors import HotplexError, SessionBusyError, UserFacingError
from hotplex.events import AgentEvent
from hotplex.interfaces import ChatAdapter, MessageOperations, MiddlewareContext
from hotplex.templating import TEMPLATES
from hotplex.types import ApprovalOutcome, ApprovalRequest, IncomingMessage

if TYPE_CHECKING:
    from hotplex.context import PluginContext
    from hotplex.engine import Engine, Turn
    from hotplex.runtime import Runtime

__all__ = ["ChatBridge", "Handled", "Outcome"]

log = logging.getLogger(__name__)

Scope = Literal["once", "session"]
Outcome = Literal["started", "answered", "refused", "busy", "duplicate", "ignored", "pending"]

#: How long the start-up rendering of recovered turns waits for the adapters to be up.
_START_WAIT = 60.0


@dataclass(frozen=True, slots=True)
class Handled:
    """What became of one message: ``started`` (``turn`` runs), ``answered`` (a command's
    reply), ``refused`` (a middleware stopped it, ``reply`` says why), ``busy``,
    ``duplicate`` (seen before), ``ignored`` (the access policy skipped it silently) or
    ``pending`` (a person must approve the prompt first; it goes on when decided)."""

    outcome: Outcome
    session_key: str
    reply: str | None = None
    turn: Turn | None = None


async def until_done(turn: Turn) -> AsyncIterator[AgentEvent]:
    """A turn's events up to and including its ``done``."""
    async for event in turn:
        yield event
        if event.type == "done":
            return


class ChatBridge:
    """Core's conversation layer (service ``hotplex.chat.CHAT_BRIDGE``)."""

    def __init__(self, ctx: PluginContext, runtime: Runtime) -> None:
        self._ctx = ctx
        self._runtime = runtime
        self._budgets: dict[int, Budget] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- parts ---------------------------------------------------------------------------

    def _engine(self) -> Engine:
        from hotplex.engine import ENGINE

        return self._ctx.services.get(ENGINE)

    def budget(self, adapter: ChatAdapter) -> Budget:
        """The write budget of an adapter, shared by all its conversations (its rate is
        read again each time: an adapter's capabilities may change, e.g. streams refused)."""
        caps = adapter.operations.capabilities
        budget = self._budgets.get(id(adapter))
        if budget is None:
            budget = Budget(caps.max_writes_per_minute, burst=caps.write_burst)
            self._budgets[id(adapter)] = budget
        budget.per_minute, budget.burst = caps.max_writes_per_minute, caps.write_burst
        return budget

    def pacer(self, adapter: ChatAdapter) -> Pacer:
        """A new pacer for one renderer: its own interval, the adapter's shared budget."""
        interval = adapter.operations.capabilities.min_update_interval
        return Pacer(interval, budget=self.budget(adapter))

    def adapter_for(self, platform: str) -> ChatAdapter | None:
        """The running adapter that owns ``platform`` addresses."""
        for name, adapter in self._runtime.adapters.items():
            if (adapter.platform or name) == platform:
                return adapter
        return None

    def _scope(self, adapter: ChatAdapter) -> str:
        for name, running in self._runtime.adapters.items():
            if running is adapter:
                section = self._ctx.settings.plugins.get(name)
                return str(getattr(section, "session_scope", "thread"))
        return "thread"

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        # the coroutine itself is the task: a task cancelled before its first step (the
        # runtime left before the adapters started) closes it, so none is left unawaited
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- the entry point -----------------------------------------------------------------

    async def handle(
        self,
        adapter: ChatAdapter,
        message: IncomingMessage,
        *,
        replay: bool = False,
        render: bool = True,
        facts: Mapping[str, Any] | None = None,
        settle_pending: bool = True,
    ) -> Handled:
        """Run ``message`` from ``adapter`` (see the module docstring). ``replay`` marks a
        stored message run again after a crash; ``render=False`` leaves the turn's events
        and the answers to the caller (``Handled.turn``, ``Handled.reply``: nothing is sent
        to the adapter), for a surface that streams them itself (the gateway). ``facts``
        start the middleware context's facts (the gateway's ``request_id``, which the
        turn's events carry, ``on_event``, ``unattended``, the session's unattended
        policy, and ``work_dir``, the directory a new session works in: a cron job's);
        ``settle_pending=False`` returns only once a prompt the WAF asked about is
        decided (with its turn or its refusal), and cancelling the call before then
        withdraws the message (a sender that went away)."""
        if self._closed:
            raise HotplexError("the chat bridge is closed")
        key = conversation_key(message, self._scope(adapter))
        if not self._runtime.has_middleware("access") and not default_access(message):
            return Handled("ignored", key)
        engine = self._engine()
        session_id = engine.session_id(key)
        settled: asyncio.Future[Handled] = asyncio.get_running_loop().create_future()

        def settle(result: Handled) -> None:
            if not settled.done():
                settled.set_result(result)

        async def final(ctx: MiddlewareContext) -> None:
            answer = await self._runtime.chat_commands.handle(
                ctx.message.text,
                address=ctx.message.address,
                user=ctx.message.user,
                platform=ctx.message.platform,
                services=self._ctx.services,
                session_key=key,
            )
            if answer is not None:
                ctx.reply = answer
                ctx.facts["answered"] = True
                return
            prompt, images = ctx.message.text, tuple[Path, ...]()
            if ctx.message.attachments:
                received = await self._receive(
                    adapter, ctx.message, key, replay=replay, render=render
                )
                prompt, images = received.prompt(ctx.message.text), received.images
            try:
                turn = await engine.execute(
                    key,
                    prompt,
                    address=ctx.message.address,
                    user=ctx.message.user,
                    inbound=ctx.message,
                    request_id=ctx.facts.get("request_id"),
                    policy=ctx.facts.get("unattended"),
                    images=images,
                    work_dir=ctx.facts.get("work_dir"),
                )
            except SessionBusyError as exc:
                ctx.reply = str(exc)
                ctx.facts["busy"] = True
                return
            ctx.facts["turn"] = turn
            if render:
                self._spawn(
                    self._render(adapter, ctx.message.address, turn, session_id),
                    f"render:{key}",
                )
            settle(Handled("started", key, turn=turn))

        async def asked(request: ApprovalRequest) -> None:
            # the WAF may key the prompt's session by the address, not the platform's scope
            ours = request.session_id == session_id or request.address == message.address
            if settle_pending and request.kind == "prompt" and ours:
                settle(Handled("pending", key))

        unsubscribe = engine.approvals.subscribe(asked)

        async def run() -> None:
            try:
                result = await self._chain(
                    adapter, message, key, final, replay=replay, answer=render, facts=facts
                )
            except BaseException as exc:
                if not settled.done():
                    settled.set_exception(exc)
                raise
            finally:
                unsubscribe()
            settle(result)

        running = self._spawn(run(), f"dispatch:{key}")
        try:
            return await settled
        except asyncio.CancelledError:
            if not settle_pending:  # the sender went away: withdraw a prompt still waiting
                running.cancel()
            raise

    async def _chain(
        self,
        adapter: ChatAdapter,
        message: IncomingMessage,
        key: str,
        final: Callable[[MiddlewareContext], Awaitable[None]],
        *,
        replay: bool,
        answer: bool,
        facts: Mapping[str, Any] | None = None,
    ) -> Handled:
        outcome: Outcome
        reply: str | None
        try:
            ctx = await self._runtime.process_inbound(
                message, final, replay=replay, facts={**(facts or {}), "session_key": key}
            )
        except UserFacingError as exc:
            reply, outcome, turn = str(exc), "refused", None
        except Exception:
            log.exception("a %s message for %s failed", message.platform, message.address)
            reply, outcome, turn = "Something went wrong; try again.", "refused", None
        else:
            turn = ctx.facts.get("turn")
            reply = ctx.reply
            if turn is not None:
                return Handled("started", key, turn=turn)
            if ctx.facts.get("duplicate"):
                return Handled("duplicate", key)
            if ctx.facts.get("answered"):
                outcome = "answered"
            elif ctx.facts.get("busy"):
                outcome = "busy"
            else:
                outcome = "refused"
        if reply and answer:
            await self.reply(adapter.operations, message.address, reply)
        return Handled(outcome, key, reply=reply)

    async def _receive(
        self,
        adapter: ChatAdapter,
        message: IncomingMessage,
        key: str,
        *,
        replay: bool,
        render: bool,
    ) -> Received:
        """Save ``message``'s attachments into the session's work directory; each file not
        taken is told in the conversation (not again on a replay, nor without rendering)."""
        engine = self._engine()
        work_dir = await engine.work_dir(key, address=message.address, user=message.user)
        received = await receive_attachments(
            message,
            work_dir,
            self._ctx.settings.chat.attachments,
            templates=self._ctx.services.find(TEMPLATES),
        )
        if received.problems and render and not replay:
            await self.reply(adapter.operations, message.address, "\n".join(received.problems))
        return received

    async def reply(self, operations: MessageOperations, address: str, text: str) -> None:
        """Send ``text`` (core's own words, escaped) to a conversation; a failure is logged."""
        try:
            await operations.send(address, operations.capabilities.escape(text))
        except Exception:
            log.exception("could not answer in %s", address)

    async def _render(
        self, adapter: ChatAdapter, address: str, turn: Turn, session_id: str
    ) -> None:
        """Render ``turn``; a reply the user stopped on the platform interrupts it."""

        async def stop() -> bool:
            if turn.finished.is_set():
                return False  # over already: a later turn of the session is not this one
            return await self._engine().interrupt(session_id)

        renderer = Renderer(
            adapter.operations,
            address,
            templates=self._ctx.services.find(TEMPLATES),
            pacer=self.pacer(adapter),
            on_stop=stop,
        )
        try:
            await renderer.render(until_done(turn))
        except Exception:
            log.exception("rendering a turn into %s failed", address)

    # -- approvals -----------------------------------------------------------------------

    async def decide(
        self,
        permission_id: str,
        decision: Literal["allow", "deny"],
        *,
        by: str,
        scope: str = "once",
        reason: str | None = None,
    ) -> ApprovalOutcome:
        """Decide an approval (a chat button's callback) through approvals in chat
        (:meth:`hotplex.chat.approvals.ChatApprovals.decide`): only its approvers decide
        (anyone else is told, only them, and ``NotAuthorizedError`` raised), a double press
        applies once (the second presser is told how it ended); returns the outcome that
        stands."""
        from hotplex.chat.approvals import CHAT_APPROVALS

        if scope not in ("once", "session"):
            raise ValueError(f"scope {scope!r}: use once or session")
        cards = self._ctx.services.find(CHAT_APPROVALS)
        if cards is not None:
            return await cards.decide(
                permission_id, decision, by=by, scope=cast(Scope, scope), reason=reason
            )
        approvals = self._engine().approvals
        done = await approvals.decide(
            permission_id, decision, by=by, scope=cast(Scope, scope), reason=reason
        )
        return ApprovalOutcome(done.decision, by=done.by, scope=done.scope, reason=done.reason)

    # -- start-up and shutdown -----------------------------------------------------------

    def start(self) -> None:
        """Render, once the adapters run, the turns the engine recovered at start-up."""
        self._spawn(self._render_recovered(), "render:recovered")

    async def _render_recovered(self) -> None:
        try:
            await asyncio.wait_for(self._runtime.started.wait(), _START_WAIT)
        except TimeoutError:
            return
        from hotplex.address import Address
        from hotplex.errors import AddressError

        for session, turn in self._engine().recovered:
            try:
                platform = Address.parse(session.address or "").platform
            except AddressError:
                continue
            adapter = self.adapter_for(platform)
            if adapter is not None and session.address is not None:
                self._spawn(
                    self._render(adapter, session.address, turn, session.session_id),
                    "render:recovered",
                )

    async def aclose(self) -> None:
        """Stop dispatching; cancel the renderers still running."""
        from hotplex.aio import cancel_and_wait

        self._closed = True
        await cancel_and_wait(*self._tasks)
