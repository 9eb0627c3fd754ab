"""One HotPlex agent session as an OpenCode session on the provider's shared server: its
events (queued to it by the provider's event pump), turns, interrupts and close."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotplex.agent_tools import Grant
from hotplex.aio import cancel_and_wait
from hotplex.errors import ProtocolError
from hotplex.events import AgentEvent, agent_event
from hotplex.interfaces import ToolGate
from hotplex.providers.opencode_events import OpenCodeNormalizer
from hotplex.providers.opencode_http import ServerUnavailable
from hotplex.providers.opencode_permissions import PermissionAnswers

if TYPE_CHECKING:
    from hotplex.providers.opencode import OpenCodeProvider

__all__ = ["ABORT_GRACE", "OpenCodeSession"]

log = logging.getLogger("hotplex.providers.opencode")

#: After our abort, how long a turn waits for OpenCode's idle before ending anyway.
ABORT_GRACE = 10.0

Item = tuple[str, Mapping[str, Any]]


class OpenCodeSession(PermissionAnswers):
    """One OpenCode session on the provider's shared server."""

    def __init__(
        self,
        provider: OpenCodeProvider,
        session_id: str,
        directory: str,
        gate: ToolGate,
        *,
        agent_id: str = "",
    ) -> None:
        self._provider = provider
        self.opencode_session_id = session_id
        #: The session id the agent was started under (what agent tools resolve).
        self.agent_id = agent_id
        self.directory = directory
        self._gate = gate
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._normalizer = OpenCodeNormalizer()
        self._permissions: dict[str, asyncio.Task[None]] = {}
        self._asked: set[str] = set()
        self._grants: dict[str, Grant] = {}
        self._turn_running = False
        #: The turn's prompt is on its way: a reconnected stream may have missed its events.
        self._prompt_sent = False
        #: The stream was not live for the whole turn: catch up from the messages at the end.
        self._gap = False
        self._abort_at: float | None = None
        self._closed = False
        self._model: str | None = None
        self._mode: str | None = None

    @property
    def alive(self) -> bool:
        return not self._closed and self._provider.server_alive

    @property
    def pid(self) -> int | None:
        """The shared server's pid (closing this session does not stop it)."""
        return self._provider.server_pid

    # -- events from the provider's reader ---------------------------------------------

    def deliver(self, kind: str, props: Mapping[str, Any], *, child: bool = False) -> None:
        """An event of this session (``child``: of a subagent session it started). During a
        turn, events queue for it in order (so ``tool_use`` is out before the gate is asked);
        otherwise only permission requests matter."""
        if kind == "message.part.updated":
            self._normalizer.note_tool(props.get("part") or {})
            self._settle_grant(props.get("part") or {})
        if self._turn_running and not child:
            self._queue.put_nowait((kind, props))
        elif kind == "permission.asked":
            self._on_permission(props)
        elif kind == "question.asked":
            self._spawn(f"q:{props.get('id')}", self._reject_question(props))

    def notify(self, kind: str, text: str = "") -> None:
        """A signal from the provider: ``_lost`` (server gone), ``_resync`` (stream
        reconnected: events may be missing)."""
        if kind == "_lost":
            self._revoke_grants()
        if kind == "_resync" and not self._prompt_sent:
            return  # the stream is live before our prompt goes: nothing of it was missed
        if self._turn_running:
            self._queue.put_nowait((kind, {"text": text}))

    # -- turns -------------------------------------------------------------------------

    def _model_ref(self) -> dict[str, str] | None:
        model = self._model
        if not model or "/" not in model:
            return None
        provider_id, model_id = model.split("/", 1)
        return {"providerID": provider_id, "modelID": model_id}

    def prompt_body(self, prompt: str) -> dict[str, Any]:
        """The ``prompt_async`` body: the text, the session's model override, and
        ``provider.append_system_prompt`` (OpenCode appends ``system`` to its own prompt)."""
        body: dict[str, Any] = {"parts": [{"type": "text", "text": prompt}]}
        model = self._model_ref()
        if model is not None:
            body["model"] = model
        if self._provider.settings.append_system_prompt:
            body["system"] = self._provider.settings.append_system_prompt
        return body

    async def turn(self, prompt: str, *, images: Sequence[Path] = ()) -> AsyncIterator[AgentEvent]:
        # ``images`` are not sent: the prompt names the files, which the agent can read
        if self._turn_running:
            raise ProtocolError("a turn is already running on this session")
        self._turn_running = True
        self._prompt_sent = self._gap = False
        self._abort_at = None
        norm = self._normalizer
        began = time.monotonic()
        try:
            while not self._queue.empty():  # stray events between turns belong to none
                self._queue.get_nowait()
            norm.start_turn()
            if not self.alive:
                yield agent_event(
                    "error",
                    code="agent_crashed",
                    message="the OpenCode server is not running",
                    retryable=True,
                )
                yield agent_event("done", status="error", duration_ms=0)
                return
            body = self.prompt_body(prompt)
            await self._provider.wait_stream(5.0)
            # events sent before the stream is live are lost: catch up before the end
            self._gap = not self._provider.stream_live
            self._prompt_sent = True
            try:
                await self._provider.request(
                    "POST",
                    f"/session/{self.opencode_session_id}/prompt_async",
                    directory=self.directory,
                    body=body,
                )
            except ProtocolError as exc:
                lost = isinstance(exc, ServerUnavailable)
                yield agent_event(
                    "error",
                    code="agent_crashed" if lost else "protocol_error",
                    message=f"OpenCode did not take the prompt: {exc}",
                    retryable=lost,
                )
                yield agent_event("done", status="error", duration_ms=0)
                return
            failure: AgentEvent | None = None
            idle_polls = 0
            while not norm.finished:
                now = time.monotonic()
                timeout = self._provider.poll_interval
                deadline = None
                if norm.retry_since is not None and not norm.gave_up:
                    deadline = norm.retry_since + self._provider.retry_deadline
                    timeout = min(timeout, max(0.0, deadline - now))
                if self._abort_at is not None:
                    timeout = min(timeout, max(0.0, self._abort_at + ABORT_GRACE - now))
                try:
                    kind, props = await asyncio.wait_for(self._queue.get(), max(0.01, timeout))
                except TimeoutError:
                    now = time.monotonic()
                    if deadline is not None and now >= deadline:
                        norm.gave_up = True
                        await self._abort()
                    elif self._abort_at is not None and now >= self._abort_at + ABORT_GRACE:
                        break  # OpenCode never confirmed the abort; the turn is over for us
                    else:
                        busy, caught_up = await self._poll(norm)
                        for event in caught_up:
                            yield event
                        idle_polls = 0 if busy else idle_polls + 1
                        if idle_polls >= 2 and not norm.finished:  # idle, no answer came
                            failure = agent_event(
                                "error",
                                code="protocol_error",
                                message="OpenCode went idle without answering the prompt",
                                retryable=True,
                            )
                            break
                    continue
                if kind == "_lost":
                    failure = agent_event(
                        "error", code="server_crashed", message=props["text"], retryable=True
                    )
                    break
                if kind == "_closed":
                    failure = agent_event(
                        "error", code="session_closed", message=props["text"], retryable=True
                    )
                    break
                if kind == "_resync":
                    self._gap = True
                    _, caught_up = await self._poll(norm)
                    for event in caught_up:
                        yield event
                    continue
                if kind == "permission.asked":
                    self._on_permission(props)
                elif kind == "question.asked":
                    self._spawn(f"q:{props.get('id')}", self._reject_question(props))
                for event in norm.feed(kind, props):
                    yield event
            window = 0
            if failure is None and self._gap and norm.finished:
                for event in await self._catch_up(norm) or ():
                    yield event
            if failure is None:
                window = await self._provider.context_window(norm.model(), self.directory)
            duration = int((time.monotonic() - began) * 1000)
            for event in norm.finish(duration, context_window=window, failure=failure):
                yield event
        finally:
            self._turn_running = self._prompt_sent = False

    async def _poll(self, norm: OpenCodeNormalizer) -> tuple[bool, list[AgentEvent]]:
        """Ask for the session's status after a silence (events may have been lost while the
        stream reconnected). When it is idle, catch up from the stored messages, and end
        the turn when they hold its answer. Returns (busy, caught-up events); (False, ...)
        when it is idle without an answer: the prompt did not start, or not yet (OpenCode
        stores the user message before it marks the session busy)."""
        try:
            status = await self._provider.request(
                "GET", "/session/status", directory=self.directory, timeout=5.0
            )
        except ProtocolError:
            return True, []
        if isinstance(status, Mapping) and self.opencode_session_id in status:
            return True, []
        events = await self._catch_up(norm)
        if events is None:
            return True, []
        if norm.started and norm.answered:
            log.info("OpenCode session %s is idle; events were lost", self.opencode_session_id)
            norm.feed("session.idle", {})
        return False, events

    async def _catch_up(self, norm: OpenCodeNormalizer) -> list[AgentEvent] | None:
        """This turn's parts from the stored messages that the stream did not bring (None
        when the server did not answer)."""
        try:
            messages = await self._provider.request(
                "GET",
                f"/session/{self.opencode_session_id}/message",
                directory=self.directory,
                params={"limit": "20"},
                timeout=10.0,
            )
        except ProtocolError:
            return None
        return norm.replay(messages if isinstance(messages, list) else [])

    async def _abort(self) -> None:
        self._abort_at = time.monotonic()
        with contextlib.suppress(ProtocolError):
            await self._provider.request(
                "POST",
                f"/session/{self.opencode_session_id}/abort",
                directory=self.directory,
                timeout=5.0,
            )

    async def interrupt(self) -> None:
        if not self._turn_running or self._closed:
            return
        self._normalizer.interrupt_requested = True
        await self._abort()
        await self._reject_pending("interrupted")

    async def close(self, grace: float = 5.0) -> None:
        """Stop using the session (it persists in OpenCode for a resume); a running turn is
        aborted. The shared server keeps running."""
        if self._closed:
            return
        self._closed = True
        self._provider.unregister(self)
        if self._turn_running:
            self._queue.put_nowait(("_closed", {"text": "the agent session was closed"}))
            if self._provider.server_alive:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._abort(), max(0.1, min(grace, 5.0)))
        if self._provider.server_alive:
            await self._reject_pending("the session was closed")
        else:
            self._asked.clear()
            self._revoke_grants()
            await cancel_and_wait(*self._permissions.values())
        await self._provider.release_directory(self.directory)

    async def control(self, subtype: str, **fields: Any) -> Mapping[str, Any]:
        """``set_model`` (``provider/model``, None for the default) and
        ``set_permission_mode`` apply to this session's next prompts and permissions."""
        if subtype == "set_model":
            model = fields.get("model")
            self._model = str(model) if model else None
            return {}
        if subtype == "set_permission_mode":
            mode = fields.get("mode")
            self._mode = str(mode) if mode else None
            return {}
        raise NotImplementedError(f"OpenCode sessions do not support {subtype!r}")
