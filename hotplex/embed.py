"""HotPlex inside a Python program: the same HotPlex ``hotplex serve`` runs, without HTTP.

::

    import hotplex

    async with hotplex.open("hotplex.yaml") as hp:
        reply = await hp.execute("my-project", "list the failing tests")
        async for event in reply:                  # AgentEvents, ending with "done"
            if event.type == "permission_request":
                await hp.decide(event.data["permission_id"], "allow")

:func:`open` builds through :func:`hotplex.compose.compose`, the path the daemon takes, so
an embedded HotPlex has every part the daemon has: storage (sessions, turns and events
survive a restart), the sinks, the engine with the WAF on every tool call and the policy
chain, the agent tools plugins register, the middleware chain (the inbound log and the WAF
on every prompt, plus plugins' middleware), chat commands and the enabled chat adapters.
What is off is off by a setting (``security.waf.enabled: false``), never by embedding.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

from hotplex.compose import compose, load_composition
from hotplex.config import Settings
from hotplex.engine import ENGINE, Engine, Turn
from hotplex.engine.approvals import ADMIN, Approvals, Decision
from hotplex.engine.session import SessionInfo
from hotplex.events import AgentEvent, agent_event
from hotplex.interfaces import MiddlewareContext
from hotplex.plugins import HotplexPluginManager
from hotplex.runtime import Runtime
from hotplex.types import IncomingMessage

__all__ = ["HotPlex", "Reply", "open"]

#: The ``platform`` of the messages an embedding program sends.
PLATFORM = "python"


class Reply:
    """What a prompt gets back. Iterate it for its AgentEvents, ending with ``done``.

    Before the turn, the middleware chain runs: a WAF ``ask`` on the prompt arrives as a
    ``permission_request`` with ``kind: prompt`` (answer it with :meth:`HotPlex.decide`),
    then its ``permission_decision``; both are on the session's stream (stored, no turn).
    A prompt a middleware stops arrives as an ``error`` (code ``refused``, the reason as
    message) and a ``done`` with status ``error``, and never reaches the agent; these two
    are this reply's own (``seq`` 0, not stored). Then come the turn's own events (``turn``
    is set once it is accepted).
    """

    def __init__(self, session_id: str, request_id: str | None) -> None:
        self.session_id = session_id
        self.request_id = request_id
        self.turn: Turn | None = None
        self.refused: str | None = None
        self._events: asyncio.Queue[AgentEvent | Turn | None] = asyncio.Queue()
        self._following: Turn | None = None

    def _before_turn(self, event: AgentEvent) -> None:
        self._events.put_nowait(
            event.stamped(session_id=self.session_id, turn_id="", seq=0, request_id=None)
        )

    def __aiter__(self) -> AsyncIterator[AgentEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[AgentEvent]:
        # re-entrant like Turn: a second ``async for`` goes on where the first stopped
        while self._following is None:
            item = await self._events.get()
            if item is None:
                self._events.put_nowait(None)
                return
            if isinstance(item, Turn):
                self._following = item
            else:
                yield item
        async for event in self._following:
            yield event

    async def collect(self, timeout: float | None = None) -> list[AgentEvent]:
        """Every event (waits for the end)."""

        async def gather() -> list[AgentEvent]:
            return [event async for event in self]

        return await asyncio.wait_for(gather(), timeout)


class HotPlex:
    """A running HotPlex (see the module docstring for what it includes)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def engine(self) -> Engine:
        return self.runtime.ctx.services.get(ENGINE)

    @property
    def approvals(self) -> Approvals:
        return self.engine.approvals

    def session_id(self, key: str) -> str:
        return self.engine.session_id(key)

    def sessions(self) -> list[SessionInfo]:
        return self.engine.sessions()

    async def execute(
        self,
        key: str,
        prompt: str,
        *,
        user: str = "local",
        request_id: str | None = None,
        work_dir: Path | None = None,
    ) -> Reply:
        """Send ``prompt`` to the session of ``key`` through the middleware chain, as the
        gateway does. Returns once the prompt's fate is known: its turn accepted, refused,
        or waiting for a person (a WAF ``ask``). Raises what the engine raises on
        acceptance (``SessionBusyError`` under ``busy_policy: reject``). ``work_dir``, an
        existing directory, is where a new session's agent works."""
        engine = self.engine
        reply = Reply(engine.session_id(key), request_id)
        settled = asyncio.Event()

        async def final(ctx: MiddlewareContext) -> None:
            turn = await engine.execute(
                key,
                ctx.message.text,
                request_id=request_id,
                user=user,
                inbound=ctx.message,
                work_dir=work_dir,
            )
            ctx.facts["turn"] = turn
            reply.turn = turn
            reply._events.put_nowait(turn)
            settled.set()

        def on_event(event: AgentEvent) -> None:  # the WAF's prompt ask and its decision
            reply._events.put_nowait(event)
            if event.type == "permission_request":
                settled.set()

        started = time.monotonic()
        message = IncomingMessage(  # the program speaks to the bot directly
            address=key, text=prompt, user=user, platform=PLATFORM, direct=True
        )

        failure: list[Exception] = []

        async def run() -> None:
            try:
                ctx = await self.runtime.process_inbound(
                    message, final, facts={"request_id": request_id, "on_event": on_event}
                )
            except Exception as exc:
                if not settled.is_set():
                    failure.append(exc)  # execute raises it
                    return
                refused = f"{type(exc).__name__}: {exc}"
            else:
                if reply.turn is not None:
                    return
                refused = ctx.reply or "The message was not accepted."
            finally:
                settled.set()
            reply.refused = refused
            duration = int((time.monotonic() - started) * 1000)
            reply._before_turn(
                agent_event("error", code="refused", message=refused, retryable=False)
            )
            reply._before_turn(agent_event("done", status="error", duration_ms=duration))
            reply._events.put_nowait(None)

        task = asyncio.create_task(run(), name=f"prompt:{key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await settled.wait()
        if failure:
            raise failure[0]
        return reply

    async def decide(
        self,
        permission_id: str,
        decision: Literal["allow", "deny"],
        *,
        by: str = ADMIN,
        scope: Literal["once", "session"] = "once",
        reason: str | None = None,
    ) -> Decision:
        """Answer a ``permission_request`` (a tool call's or a prompt's); the embedding
        program decides as ``admin`` unless it names someone."""
        return await self.approvals.decide(
            permission_id, decision, by=by, scope=scope, reason=reason
        )

    async def interrupt(self, session_id: str) -> bool:
        """Interrupt the running turn of a session; False when nothing was running."""
        return await self.engine.interrupt(session_id)

    async def reset(self, session_id: str) -> None:
        """Forget the conversation: the next prompt starts a fresh agent session."""
        await self.engine.reset(session_id)

    async def forget(self, session_id: str) -> bool:
        """End the session and forget it (record, events, and the directories HotPlex made
        for it); the key's next prompt starts a new session."""
        return await self.engine.forget(session_id)

    async def history(
        self, session_id: str, *, since_seq: int = 0, limit: int = 1000
    ) -> list[AgentEvent]:
        """The session's stored events after ``since_seq`` (every event but ``text_delta``)."""
        return await self.engine.history(session_id, since_seq=since_seq, limit=limit)

    async def aclose(self) -> None:
        """Cancel the prompts still in the middleware chain (e.g. waiting for a person)."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task


@asynccontextmanager
async def open(
    config: str | os.PathLike[str] | None = None,
    *,
    settings: Settings | None = None,
    plugins: HotplexPluginManager | None = None,
    environ: Mapping[str, str] | None = None,
) -> AsyncIterator[HotPlex]:
    """Build and start HotPlex from a config file (default: ``./hotplex.yaml``, then
    ``~/.config/hotplex/hotplex.yaml``, then the defaults) and the installed plugins, the
    way ``hotplex serve`` does; stop it on exit. ``settings`` replaces the file's settings
    (already validated); ``plugins`` replaces the plugin manager (e.g. one built with
    :func:`hotplex.plugins.make_plugin_manager` for a test)."""
    if plugins is None or settings is None:
        composition = load_composition(config, plugins=plugins, environ=environ)
        plugins = composition.plugins
        settings = settings or composition.config.settings
    async with compose(settings, plugins) as runtime:
        embedded = HotPlex(runtime)
        try:
            yield embedded
        finally:
            await embedded.aclose()
