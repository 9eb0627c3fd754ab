"""The state of the OpenCode-compatible API: its sessions, their history, the turns being
relayed and the ``/event`` listeners.

An OpenCode session ``ses_...`` is a gateway session of the key that created it: its engine
address is ``web:<key name>/ses_...``, so the same conversation can also be followed over
the WebSocket. A turn's events are translated as they come and sent to every ``/event``
listener of the owning key (and to admins). A listener that stops reading is dropped when
its bounded queue fills, without slowing the others or the turn. Events are numbered (the
SSE ``id:``) and the latest ``RECENT_EVENTS`` are kept, so a stream that comes back with
``Last-Event-ID`` (the SDK's client does when its connection drops) misses nothing of the
recent past.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from hotplex.aio import cancel_and_wait
from hotplex.engine import Turn
from hotplex.events import AgentEvent
from hotplex.gateway.clients import Caller, Gateway, Target
from hotplex.gateway.follow import read_events
from hotplex.gateway.frames import GatewayError
from hotplex.gateway.opencode.translate import TurnTranslator, new_id, now_ms, oc_event

__all__ = ["MAX_SESSIONS", "RECENT_EVENTS", "CompatSession", "Hub", "Listener", "Numbered"]

log = logging.getLogger(__name__)

JSON = dict[str, Any]

#: Sessions remembered (their titles and recent history); the oldest are forgotten first.
MAX_SESSIONS = 10_000
#: Messages of history kept per session (a turn is two).
MAX_MESSAGES = 200
#: Events kept for streams that come back with ``Last-Event-ID`` (all keys together).
RECENT_EVENTS = 2000


@dataclass(slots=True)
class CompatSession:
    id: str
    owner: str
    title: str
    directory: str
    created: int = field(default_factory=now_ms)
    updated: int = field(default_factory=now_ms)
    messages: list[JSON] = field(default_factory=list)
    running: int = 0

    @property
    def caller(self) -> Caller:
        """The key that owns the session, as the gateway names its sessions."""
        return Caller(self.owner, admin=False)

    def info(self) -> JSON:
        return {
            "id": self.id,
            "projectID": "global",
            "directory": self.directory,
            "title": self.title,
            "version": "hotplex",
            "time": {"created": self.created, "updated": self.updated},
        }


def may_see(caller: Caller, owner: str) -> bool:
    """Whether ``caller`` may see what belongs to the key named ``owner``."""
    return caller.admin or caller.name == owner


#: One event on its way to the streams: its number (the SSE ``id:``), owner and body.
Numbered = tuple[int, str, JSON]


class Listener:
    """One ``/event`` stream: a bounded queue of numbered events (None ends it)."""

    def __init__(self, caller: Caller, maxsize: int, wrap: str | None) -> None:
        self.caller = caller
        self.wrap = wrap  # the directory of ``/global/event`` frames, None for ``/event``
        self.queue: asyncio.Queue[Numbered | None] = asyncio.Queue(maxsize)
        self.dropped = False

    def wants(self, owner: str) -> bool:
        return may_see(self.caller, owner)

    def offer(self, event: Numbered | None) -> None:
        if self.dropped:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped = True
            while not self.queue.empty():  # make room for the end marker
                self.queue.get_nowait()
            self.queue.put_nowait(None)


class Hub:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.sessions: OrderedDict[str, CompatSession] = OrderedDict()
        self.listeners: set[Listener] = set()
        #: The latest events of every key, numbered, for streams that resume
        self.recent: deque[Numbered] = deque(maxlen=RECENT_EVENTS)
        self._number = 0
        self._relays: set[asyncio.Task[JSON]] = set()
        provider = gateway.runtime.settings.provider
        self.model = provider.model or provider.type
        self.directory = str(gateway.runtime.settings.engine.resolved_work_dir)

    # -- sessions ----------------------------------------------------------------------

    def create(self, caller: Caller, title: str | None) -> CompatSession:
        session_id = new_id("ses")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        session = CompatSession(
            session_id, caller.name, title or f"New session - {stamp}", self.directory
        )
        self._remember(session)
        self.broadcast(caller.name, [oc_event("session.created", {"info": session.info()})])
        return session

    def _remember(self, session: CompatSession) -> None:
        self.sessions[session.id] = session
        self.sessions.move_to_end(session.id)
        while len(self.sessions) > MAX_SESSIONS:
            self.sessions.popitem(last=False)

    async def find(self, caller: Caller, session_id: str) -> CompatSession:
        """The caller's session (an admin's: anyone's); 404 when unknown, 403 when another
        key's. A session forgotten since (a restart) is recalled when the engine or
        storage still knows its conversation."""
        session = self.sessions.get(session_id)
        if session is None:
            session = await self._recall(caller, session_id)
        if not may_see(caller, session.owner):
            raise GatewayError(
                "not_authorized", "This session belongs to another API key.", status=403
            )
        return session

    async def _recall(self, caller: Caller, session_id: str) -> CompatSession:
        unknown = GatewayError("unknown_session", f"No session {session_id!r}.", status=404)
        if not session_id.startswith("ses_"):
            raise unknown
        target = self.gateway.own(caller, session_id)
        if target.session is None:
            storage = self.gateway.storage()
            stored = storage is not None and bool(
                await read_events(storage, target.session_id, 0, 1)
            )
            if not stored:
                raise unknown
        session = CompatSession(session_id, caller.name, "Recovered session", self.directory)
        self._remember(session)
        return session

    def target(self, session: CompatSession) -> Target:
        """The gateway's view of the session (its engine id; the live session, if any)."""
        return self.gateway.own(session.caller, session.id)

    def owned(self, caller: Caller) -> list[CompatSession]:
        return [s for s in self.sessions.values() if may_see(caller, s.owner)]

    def forget(self, session: CompatSession) -> None:
        self.sessions.pop(session.id, None)
        self.broadcast(session.owner, [oc_event("session.deleted", {"info": session.info()})])

    # -- turns -------------------------------------------------------------------------

    async def prompt(self, caller: Caller, session: CompatSession, text: str) -> asyncio.Task[JSON]:
        """Start a turn; the task ends with the assistant's ``{info, parts}`` and goes on
        when the caller goes away (the turn is the engine's, the relay is the hub's).

        This returns once the turn has started, or as soon as the WAF asks about the prompt:
        the ask goes to ``/event`` as a permission (``permission.updated`` and
        ``permission.asked``), and the task waits for its decision. A prompt refused at once
        raises here; one refused after an ask ends the task with the error, also sent to
        ``/event`` as ``session.error``."""
        translator = TurnTranslator(session.id, text, model=self.model, directory=session.directory)
        asked, started = asyncio.Event(), asyncio.Event()

        def on_event(event: AgentEvent) -> None:  # the WAF's prompt ask and its decision
            if event.type in ("permission_request", "permission_decision"):
                self.broadcast(session.owner, translator.feed(event))
                asked.set()

        task = asyncio.create_task(
            self._run(session, text, translator, on_event=on_event, asked=asked, started=started),
            name=f"oc:{session.id}",
        )
        self._relays.add(task)
        task.add_done_callback(_settled(self._relays))
        # not cancelled with the caller: a request that goes away leaves the turn running
        await _first(task, asked, started)
        if task.done() and not asked.is_set():
            task.result()  # a prompt refused (or a chat command answered) at once raises
        return task

    async def _run(
        self,
        session: CompatSession,
        text: str,
        translator: TurnTranslator,
        *,
        on_event: Callable[[AgentEvent], None],
        asked: asyncio.Event,
        started: asyncio.Event,
    ) -> JSON:
        try:
            turn = await self.gateway.execute(
                session.caller, session.id, text, None, on_event=on_event
            )
            if turn is None:  # a chat command (/reset, ...) answered; no turn to translate
                raise GatewayError(
                    "answered", "That was a chat command; it ran, with no turn.", status=400
                )
        except GatewayError as error:
            if asked.is_set():  # the caller has been told the prompt waits: tell it the end
                failure = {
                    "name": "UnknownError",
                    "data": {"message": error.message, "code": error.code},
                }
                self.broadcast(
                    session.owner,
                    [oc_event("session.error", {"sessionID": session.id, "error": failure})],
                )
            raise
        session.running += 1
        session.updated = now_ms()
        self.broadcast(session.owner, translator.start())
        started.set()
        return await self._relay(session, turn, translator)

    async def _relay(self, session: CompatSession, turn: Turn, translator: TurnTranslator) -> JSON:
        try:
            async for event in turn:
                self.broadcast(session.owner, translator.feed(event))
        finally:
            session.running -= 1
            session.updated = now_ms()
            session.messages.extend(translator.messages())
            del session.messages[:-MAX_MESSAGES]
        return translator.assistant_message()

    def status(self, caller: Caller) -> JSON:
        return {s.id: {"type": "busy"} for s in self.owned(caller) if s.running}

    # -- listeners ---------------------------------------------------------------------

    def listen(self, caller: Caller, *, wrap: str | None) -> tuple[Listener, int]:
        """A new stream, and the number of the last event sent before it began: the
        stream's queue gets every later one."""
        listener = Listener(caller, self.gateway.settings.client_queue, wrap)
        self.listeners.add(listener)
        return listener, self._number

    def replay(self, caller: Caller, after: int, upto: int) -> list[Numbered]:
        """The caller's events numbered ``after < n <= upto`` still among the recent ones."""
        return [
            numbered
            for numbered in self.recent
            if after < numbered[0] <= upto and may_see(caller, numbered[1])
        ]

    def unlisten(self, listener: Listener) -> None:
        self.listeners.discard(listener)

    def broadcast(self, owner: str, events: Iterable[JSON]) -> None:
        batch: list[Numbered] = []
        for event in events:
            self._number += 1
            batch.append((self._number, owner, event))
        if not batch:
            return
        self.recent.extend(batch)
        for listener in list(self.listeners):
            if listener.wants(owner):
                for numbered in batch:
                    listener.offer(numbered)
                if listener.dropped:
                    self.gateway.slow_disconnects += 1
                    log.warning("dropping an OpenCode event stream: the client stopped reading")
                    self.listeners.discard(listener)

    async def aclose(self) -> None:
        """Stop relaying (the turns go on in the engine) and end every stream."""
        for task in list(self._relays):
            await cancel_and_wait(task)
        for listener in list(self.listeners):
            listener.offer(None)


def _settled(tasks: set[asyncio.Task[JSON]]) -> Callable[[asyncio.Task[JSON]], None]:
    """A done callback: forget the task and take its outcome (a refusal after an ask is
    reported on ``/event``; nobody need await it)."""

    def done(task: asyncio.Task[JSON]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()

    return done


async def _first(task: asyncio.Task[JSON], *events: asyncio.Event) -> None:
    """Wait until the task ends or one of the events is set (the task is not cancelled
    when the waiter is)."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait({task, *waiters}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
