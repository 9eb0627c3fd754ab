"""The OpenCode provider: agent sessions on one shared ``opencode serve`` per provider.

- **Server.** ``opencode serve --hostname 127.0.0.1 --port <free port>`` is started on the
  first :meth:`OpenCodeProvider.start`, in its own process group, with its state under
  ``<data_dir>/opencode`` (the four ``XDG_*_HOME`` directories) and a random
  ``OPENCODE_SERVER_PASSWORD`` per start; every request sends HTTP Basic auth. A watchdog
  restarts it when it exits or fails ``health_failures`` health checks in a row; sessions
  persist in its SQLite database, so they carry on after a restart.
- **Model.** With ``ANTHROPIC_BASE_URL`` in the agent environment, OpenCode's ``anthropic``
  provider is pointed at ``<ANTHROPIC_BASE_URL>/v1`` with ``ANTHROPIC_API_KEY`` (through
  ``OPENCODE_CONFIG_CONTENT``); otherwise OpenCode's own provider setup applies.
  ``provider.model`` (``provider/model``) becomes OpenCode's ``model``.
- **Sessions.** One OpenCode session (``ses_...``) per HotPlex agent session, created with
  ``?directory=<work dir>``; ``<state_dir>/opencode-session.json`` maps the provider session
  id to it, so a resume finds it again.
- **Events.** One ``/global/event`` stream per provider (not per session) is read and
  dispatched to sessions by ``sessionID``; it reconnects with backoff. A turn is
  ``POST /session/{id}/prompt_async`` and the events up to that session's ``idle``
  (see :mod:`hotplex.providers.opencode_events`).
- **Permissions.** Every tool asks (``*: ask`` for the session and, through
  ``OPENCODE_PERMISSION``, for every agent including subagents); each ``permission.asked`` is
  put to the gate at the ``pre`` stage and, when a person has to decide, at the
  ``permission`` stage, then answered ``once`` or ``reject``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from hotplex.aio import cancel_and_wait
from hotplex.binaries import find_binary
from hotplex.config import ProviderSettings
from hotplex.engine.subprocess import AgentSubprocess
from hotplex.errors import AgentStartError, ProtocolError
from hotplex.events import AgentEvent, agent_event
from hotplex.interfaces import AgentProcess, Provider, ToolGate
from hotplex.providers.opencode_events import (
    CONFIG_PERMISSION,
    SESSION_RULES,
    OpenCodeNormalizer,
    SSEParser,
    needs_person,
    rule_matches,
)
from hotplex.types import AgentStartSpec, ToolDecision, ToolRequest

__all__ = ["HttpStatusError", "OpenCodeProvider", "OpenCodeSession", "ServerUnavailable"]

log = logging.getLogger(__name__)

SESSION_MAP = "opencode-session.json"
USERNAME = "opencode"
START_TIMEOUT = 30.0
RETRY_DEADLINE = 120.0
HEALTH_INTERVAL = 5.0
HEALTH_FAILURES = 3
REQUEST_TIMEOUT = 30.0
#: A running turn that hears nothing for this long asks the server for the session's status.
POLL_INTERVAL = 5.0
#: After our abort, how long a turn waits for OpenCode's idle before ending anyway.
ABORT_GRACE = 10.0
#: The server sends a heartbeat every 10 s; a stream silent this long is reconnected.
SSE_READ_TIMEOUT = 35.0
MAX_FRAME = 64 * 1024 * 1024

#: Set unless provider.env says otherwise (protocols.md §6.1; OPENCODE_PURE skips installing
#: external plugins into the config dir).
DEFAULT_ENV = {
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
    "OPENCODE_DISABLE_SHARE": "1",
    "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "OPENCODE_DISABLE_CLAUDE_CODE": "1",
    "OPENCODE_PURE": "1",
}


class ServerUnavailable(ProtocolError):
    """The OpenCode server could not be reached."""


class HttpStatusError(ProtocolError):
    """The OpenCode server answered with an HTTP error status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class _Server:
    sub: AgentSubprocess
    port: int
    password: str
    drain: asyncio.Task[None]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        token = base64.b64encode(f"{USERNAME}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}


Item = tuple[str, Mapping[str, Any]]


class OpenCodeSession(AgentProcess):
    """One OpenCode session on the provider's shared server."""

    def __init__(
        self, provider: OpenCodeProvider, session_id: str, directory: str, gate: ToolGate
    ) -> None:
        self._provider = provider
        self.opencode_session_id = session_id
        self.directory = directory
        self._gate = gate
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._normalizer = OpenCodeNormalizer()
        self._permissions: dict[str, asyncio.Task[None]] = {}
        self._asked: set[str] = set()
        self._turn_running = False
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
        if self._turn_running and not child:
            self._queue.put_nowait((kind, props))
        elif kind == "permission.asked":
            self._on_permission(props)
        elif kind == "question.asked":
            self._spawn(f"q:{props.get('id')}", self._reject_question(props))

    def notify(self, kind: str, text: str = "") -> None:
        """A signal from the provider: ``_lost`` (server gone), ``_resync`` (stream
        reconnected: events may be missing)."""
        if self._turn_running:
            self._queue.put_nowait((kind, {"text": text}))

    def _spawn(self, key: str, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=f"opencode-perm:{key}")
        self._permissions[key] = task
        task.add_done_callback(lambda _: self._permissions.pop(key, None))

    # -- permissions -------------------------------------------------------------------

    def _on_permission(self, props: Mapping[str, Any]) -> None:
        self._asked.add(str(props.get("id")))
        self._spawn(str(props.get("id")), self._answer_permission(props))

    async def _reply(self, request_id: str, body: Mapping[str, Any]) -> None:
        self._asked.discard(request_id)
        with contextlib.suppress(ProtocolError):
            await self._provider.request(
                "POST", f"/permission/{request_id}/reply", directory=self.directory, body=body
            )

    async def _reject_pending(self, reason: str) -> None:
        """Cancel the gate tasks and reject what OpenCode still waits for (an abort leaves
        its permission requests pending)."""
        current = asyncio.current_task()  # a gate answer with interrupt=True lands here
        tasks = [task for task in self._permissions.values() if task is not current]
        await cancel_and_wait(*tasks)
        for request_id in list(self._asked):
            await self._reply(request_id, {"reply": "reject", "message": reason})

    async def _answer_permission(self, props: Mapping[str, Any]) -> None:
        request_id = str(props.get("id"))
        try:
            decision = await self._decide(props)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the gate failed on OpenCode permission %s", request_id)
            decision = ToolDecision("deny", message="the permission check failed")
        if decision.behavior == "allow":
            body: dict[str, Any] = {"reply": "once"}
        else:
            body = {"reply": "reject", "message": decision.message or "denied"}
        await self._reply(request_id, body)
        if decision.behavior != "allow" and decision.interrupt:
            await self.interrupt()

    async def _decide(self, props: Mapping[str, Any]) -> ToolDecision:
        permission = str(props.get("permission") or "")
        patterns = [str(p) for p in props.get("patterns") or ()]
        call_id = str((props.get("tool") or {}).get("callID") or "") or None
        known = self._normalizer.tool_calls.get(call_id or "")
        tool = known.tool if known is not None else permission
        if known is not None:
            tool_input = dict(known.input)
        else:
            tool_input = dict(props.get("metadata") or {}) or {"patterns": patterns}
        reason = None
        if permission != tool:
            reason = f"OpenCode asks for the {permission} permission"
            reason += f" ({', '.join(patterns)})" if patterns else ""
        facts = {**tool_input, "patterns": patterns}
        settings = self._provider.settings
        mode = self._mode or settings.permission_mode
        if any(rule_matches(r, permission, tool, facts) for r in settings.disallowed_tools):
            return ToolDecision(
                "deny", message=f"{tool} is not allowed here (provider.disallowed_tools)"
            )
        person = needs_person(permission, mode) and not any(
            rule_matches(r, permission, tool, facts) for r in settings.allowed_tools
        )
        if permission == "external_directory" and patterns:
            own = str(self._provider.state_root.resolve()) + os.sep
            person = person and not all(p.startswith(own) for p in patterns)
        if person and mode == "plan":
            return ToolDecision("deny", message="Plan mode: the agent may only read and plan.")
        blocked = patterns[0] if permission == "external_directory" and patterns else None
        request = ToolRequest(
            stage="pre",
            tool=tool,
            input=tool_input,
            tool_use_id=call_id,
            reason=reason,
            blocked_path=blocked,
        )
        pre = await self._gate(request)
        if pre.behavior in ("allow", "deny") or (pre.behavior == "defer" and not person):
            return ToolDecision("allow") if pre.behavior == "defer" else pre
        if mode == "dontAsk":
            return ToolDecision("deny", message=f"{tool} needs approval (permission mode dontAsk)")
        always = [str(p) for p in props.get("always") or ()]
        suggestions: tuple[Mapping[str, Any], ...] = ()
        if tool == "bash" and always:
            rules = [{"toolName": tool, "ruleContent": rule} for rule in always]
            suggestions = ({"type": "addRules", "rules": rules},)
        return await self._gate(
            ToolRequest(
                stage="permission",
                tool=tool,
                input=tool_input,
                tool_use_id=call_id,
                reason=reason,
                suggestions=suggestions,
                blocked_path=blocked,
            )
        )

    async def _reject_question(self, props: Mapping[str, Any]) -> None:
        with contextlib.suppress(ProtocolError):
            await self._provider.request(
                "POST", f"/question/{props.get('id')}/reject", directory=self.directory
            )

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

    async def turn(self, prompt: str) -> AsyncIterator[AgentEvent]:
        if self._turn_running:
            raise ProtocolError("a turn is already running on this session")
        self._turn_running = True
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
                        running, caught_up = await self._poll(norm)
                        for event in caught_up:
                            yield event
                        idle_polls = 0 if running else idle_polls + 1
                        if idle_polls >= 2:  # idle and our prompt never showed up
                            failure = agent_event(
                                "error",
                                code="protocol_error",
                                message="OpenCode went idle without running the prompt",
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
            if failure is None:
                window = await self._provider.context_window(norm.model(), self.directory)
            duration = int((time.monotonic() - began) * 1000)
            for event in norm.finish(duration, context_window=window, failure=failure):
                yield event
        finally:
            self._turn_running = False

    async def _poll(self, norm: OpenCodeNormalizer) -> tuple[bool, list[AgentEvent]]:
        """Ask for the session's status after a silence (events may have been lost while the
        stream reconnected). When it is idle, catch up from the stored messages and end the
        turn; returns (False, ...) when it is idle and this turn never started."""
        try:
            status = await self._provider.request(
                "GET", "/session/status", directory=self.directory, timeout=5.0
            )
        except ProtocolError:
            return True, []
        if isinstance(status, Mapping) and self.opencode_session_id in status:
            return True, []
        try:
            messages = await self._provider.request(
                "GET",
                f"/session/{self.opencode_session_id}/message",
                directory=self.directory,
                params={"limit": "20"},
                timeout=10.0,
            )
        except ProtocolError:
            return True, []
        events = norm.replay(messages if isinstance(messages, list) else [])
        if norm.started:
            log.info("OpenCode session %s is idle; events were lost", self.opencode_session_id)
            norm.feed("session.idle", {})
        return norm.started, events

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


class OpenCodeProvider(Provider):
    """Sessions on one ``opencode serve`` per provider (per daemon)."""

    name = "opencode"

    def __init__(
        self,
        settings: ProviderSettings,
        *,
        binary: Path | None = None,
        data_dir: Path,
        retry_deadline: float = RETRY_DEADLINE,
        start_timeout: float = START_TIMEOUT,
        health_interval: float = HEALTH_INTERVAL,
        health_failures: int = HEALTH_FAILURES,
        health_timeout: float = 5.0,
        request_timeout: float = REQUEST_TIMEOUT,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self.settings = settings
        self._binary = binary
        self.state_root = Path(data_dir) / "opencode"
        #: Give up on a turn this long after OpenCode's first retry of an API error.
        self.retry_deadline = retry_deadline
        self.start_timeout = start_timeout
        self.health_interval = health_interval
        self.health_failures = health_failures
        self.health_timeout = health_timeout
        self.request_timeout = request_timeout
        #: A running turn that hears nothing for this long asks for the session's status.
        self.poll_interval = poll_interval
        self._env: dict[str, str] | None = None
        self._server: _Server | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ready = asyncio.Event()
        self._stream_ready = asyncio.Event()
        self._start_lock = asyncio.Lock()
        self._watchdog: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._stream: aiohttp.ClientResponse | None = None
        self._sessions: dict[str, OpenCodeSession] = {}
        self._children: dict[str, str] = {}
        self._windows: dict[tuple[str, str], int] = {}
        self._closed = False
        #: How many times the server was (re)started; tests and metrics read it.
        self.starts = 0

    # -- configuration -----------------------------------------------------------------

    @property
    def binary(self) -> Path:
        if self._binary is None:
            found = find_binary("opencode", self.settings.binary)
            if found is None:
                raise AgentStartError(
                    "the opencode executable was not found; run `make setup` (installs the "
                    "pinned CLI into node_modules) or set provider.binary"
                )
            self._binary = found
        return self._binary

    def profile(self) -> str:
        return "\0".join(
            ["opencode", str(self._binary or self.settings.binary or ""), self.settings.model or ""]
        )

    def opencode_config(self, env: Mapping[str, str]) -> dict[str, Any]:
        """What goes into ``OPENCODE_CONFIG_CONTENT`` (merged over any given in env)."""
        config: dict[str, Any] = {}
        base_url = env.get("ANTHROPIC_BASE_URL")
        if base_url:
            base = base_url.rstrip("/")
            options = {"baseURL": base if base.endswith("/v1") else base + "/v1"}
            if env.get("ANTHROPIC_API_KEY"):
                options["apiKey"] = env["ANTHROPIC_API_KEY"]
            config["provider"] = {"anthropic": {"options": options}}
        model = self.settings.model
        if model:
            config["model"] = model if "/" in model or not base_url else f"anthropic/{model}"
        return config

    def server_env(self, env: Mapping[str, str], password: str) -> dict[str, str]:
        out = dict(env)
        for name in ("data", "config", "cache", "state"):
            out[f"XDG_{name.upper()}_HOME"] = str(self.state_root / name)
        for key, value in DEFAULT_ENV.items():
            out.setdefault(key, value)
        out["OPENCODE_SERVER_USERNAME"] = USERNAME
        out["OPENCODE_SERVER_PASSWORD"] = password
        try:
            theirs = json.loads(env.get("OPENCODE_PERMISSION") or "{}")
        except ValueError:
            theirs = {}
        theirs = theirs if isinstance(theirs, dict) else {}
        permission = {k: v for k, v in theirs.items() if k not in CONFIG_PERMISSION}
        out["OPENCODE_PERMISSION"] = json.dumps({**permission, **CONFIG_PERMISSION})
        config = self.opencode_config(env)
        if config:
            try:
                given = json.loads(env.get("OPENCODE_CONFIG_CONTENT") or "{}")
            except ValueError:
                given = {}
            merged = _merge(given if isinstance(given, dict) else {}, config)
            out["OPENCODE_CONFIG_CONTENT"] = json.dumps(merged)
        return out

    def _link_auth(self, env: Mapping[str, str]) -> None:
        """``opencode auth login`` keeps credentials in the user's data dir; link them into
        the isolated one."""
        base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        source = Path(base) / "opencode" / "auth.json"
        target = self.state_root / "data" / "opencode" / "auth.json"
        if source.is_file() and not target.exists() and source.resolve() != target.resolve():
            with contextlib.suppress(OSError):
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(source)

    # -- the server --------------------------------------------------------------------

    @property
    def server_alive(self) -> bool:
        server = self._server
        return self._ready.is_set() and server is not None and server.sub.running

    @property
    def server_pid(self) -> int | None:
        return self._server.sub.pid if self._server is not None else None

    async def _ensure_server(self, env: Mapping[str, str]) -> None:
        if self._closed:
            raise AgentStartError("the OpenCode provider is closed")
        if self._env is None:
            self._env = dict(env)
        if self.server_alive:
            return
        if self._watchdog is not None and not self._watchdog.done():
            # the watchdog owns restarts: wait until it noticed and brought the server back
            bound = self.start_timeout + 5.0
            bound += self.health_failures * (self.health_interval + self.health_timeout)
            try:
                await asyncio.wait_for(self._wait_alive(), bound)
            except TimeoutError:
                raise AgentStartError(
                    "the OpenCode server is restarting and did not come back"
                ) from None
            return
        async with self._start_lock:
            if self.server_alive:
                return
            if self._server is not None:  # left behind by a watchdog that failed
                await self._stop(self._server, 0.5)
            await self._launch()
        self._watchdog = asyncio.create_task(self._watch(), name="opencode-watchdog")
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_events(), name="opencode-events")

    async def _wait_alive(self) -> None:
        while not self.server_alive:
            if self._closed:
                raise AgentStartError("the OpenCode provider is closed")
            if self._ready.is_set():  # it died and the watchdog has not noticed yet
                await asyncio.sleep(0.05)
            else:
                await self._ready.wait()

    async def _launch(self) -> None:
        """Start ``opencode serve`` and wait until it is healthy; caller holds _start_lock."""
        assert self._env is not None
        self.state_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._link_auth(self._env)
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.request_timeout)
            )
        error = "no attempt"
        for _ in range(3):  # a port taken between probing and binding: try another one
            port = _free_port()
            password = secrets.token_urlsafe(24)
            argv = [str(self.binary), "serve", "--hostname", "127.0.0.1", "--port", str(port)]
            sub = await AgentSubprocess.spawn(
                argv, cwd=self.state_root, env=self.server_env(self._env, password)
            )
            drain = asyncio.create_task(self._drain(sub), name=f"opencode-stdout:{sub.pid}")
            server = _Server(sub, port, password, drain)
            deadline = time.monotonic() + self.start_timeout
            try:
                while sub.running and time.monotonic() < deadline:
                    if await self._healthy(server, timeout=2.0):
                        self._server = server
                        self.starts += 1
                        self._ready.set()
                        log.info("opencode serve (pid %d) is listening on port %d", sub.pid, port)
                        return
                    await asyncio.sleep(0.1)
            except BaseException:  # cancelled (aclose): leave no server behind
                await self._stop(server, 0.5)
                raise
            if sub.running:
                error = f"not healthy within {self.start_timeout:.0f}s"
            else:
                error = f"exited with code {sub.returncode}: {sub.stderr_tail()}"
            await self._stop(server, 2.0)
        raise AgentStartError(f"opencode serve did not start: {error}")

    @staticmethod
    async def _drain(sub: AgentSubprocess) -> None:
        while await sub.read_message() is not None:
            pass

    async def _stop(self, server: _Server, grace: float) -> None:
        with contextlib.suppress(OSError):  # a stopped (hung) server could not act on SIGTERM
            os.killpg(server.sub.pgid, signal.SIGCONT)
        with contextlib.suppress(AgentStartError):
            await server.sub.stop(grace)
        await cancel_and_wait(server.drain)

    async def _healthy(self, server: _Server, timeout: float = 5.0) -> bool:
        if self._http is None:
            return False
        try:
            async with self._http.get(
                server.url + "/global/health",
                headers=server.headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                if resp.status != 200:
                    return False
                body = await resp.json()
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
            return False
        return isinstance(body, dict) and body.get("healthy") is True

    async def _watch(self) -> None:
        """Restart the server when it exits or fails health checks in a row."""
        try:
            while not self._closed and self._server is not None:
                server = self._server
                reason = await self._watch_one(server)
                log.warning("%s; restarting it", reason)
                self._ready.clear()
                self._stream_ready.clear()
                for session in list(self._sessions.values()):
                    session.notify("_lost", f"{reason}; it is being restarted (send it again)")
                await self._stop(server, 0.5)  # dead or hung: no graceful exit to wait for
                backoff = 0.5
                while not self._closed:
                    try:
                        async with self._start_lock:
                            await self._launch()
                        break
                    except AgentStartError as exc:
                        log.error("restarting the OpenCode server failed: %s", exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 30.0)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the OpenCode watchdog failed; the next start relaunches the server")

    async def _watch_one(self, server: _Server) -> str:
        """Wait until this server exits or fails ``health_failures`` checks in a row."""
        failures = 0
        while True:
            returncode = await server.sub.wait(self.health_interval)
            if returncode is not None:
                return f"the OpenCode server exited with code {returncode}"
            if await self._healthy(server, self.health_timeout):
                failures = 0
                continue
            failures += 1
            if failures >= self.health_failures:
                return f"the OpenCode server failed {failures} health checks in a row"

    # -- HTTP --------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        directory: str | None = None,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One API call; the decoded JSON answer (None when empty). Raises
        ServerUnavailable when the server cannot be reached, HttpStatusError on >= 400."""
        server, http = self._server, self._http
        if server is None or http is None or not self.server_alive:
            raise ServerUnavailable("the OpenCode server is not running")
        query = dict(params or {})
        if directory is not None:
            query["directory"] = directory
        try:
            async with http.request(
                method,
                server.url + path,
                params=query,
                json=body,
                headers=server.headers,
                timeout=aiohttp.ClientTimeout(total=timeout or self.request_timeout),
            ) as resp:
                text = await resp.text()
                if resp.status >= 400:
                    raise HttpStatusError(
                        f"{method} {path}: HTTP {resp.status}: {text[:300]}", resp.status
                    )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ServerUnavailable(f"{method} {path}: {exc!r}") from exc
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text

    async def wait_stream(self, timeout: float) -> None:
        """Wait (bounded) until the event stream is connected."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stream_ready.wait(), timeout)

    async def context_window(self, model: tuple[str, str] | None, directory: str) -> int:
        if model is None:
            return 0
        if model not in self._windows:
            try:
                data = await self.request(
                    "GET", "/config/providers", directory=directory, timeout=5.0
                )
            except ProtocolError:
                return 0
            for provider in (data or {}).get("providers") or []:
                for model_id, info in (provider.get("models") or {}).items():
                    limit = (info or {}).get("limit") or {}
                    self._windows[(str(provider.get("id")), str(model_id))] = int(
                        limit.get("context") or 0
                    )
        return self._windows.get(model, 0)

    # -- the event stream --------------------------------------------------------------

    async def _read_events(self) -> None:
        """Read ``/global/event`` for as long as the provider lives, reconnecting."""
        backoff = 0.1
        while not self._closed:
            await self._ready.wait()
            server, http = self._server, self._http
            if server is None or http is None:
                continue
            try:
                async with http.get(
                    server.url + "/global/event",
                    headers=server.headers,
                    timeout=aiohttp.ClientTimeout(
                        total=None, sock_connect=5.0, sock_read=SSE_READ_TIMEOUT
                    ),
                ) as resp:
                    if resp.status != 200:
                        raise ProtocolError(f"GET /global/event: HTTP {resp.status}")
                    backoff = 0.1
                    self._stream = resp
                    await self._read_stream(resp)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("the OpenCode event stream dropped: %r", exc)
            self._stream = None
            self._stream_ready.clear()
            if self._closed:
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _read_stream(self, resp: aiohttp.ClientResponse) -> None:
        parser = SSEParser(MAX_FRAME)
        async for chunk in resp.content.iter_any():
            for frame in parser.feed(chunk):
                self._on_frame(frame)

    def _on_frame(self, frame: bytes) -> None:
        try:
            message = json.loads(frame)
        except ValueError:
            log.debug("a non-JSON OpenCode event: %.200r", frame)
            return
        if not isinstance(message, dict):
            return
        payload = message.get("payload", message)
        kind = payload.get("type") if isinstance(payload, dict) else None
        if not isinstance(kind, str) or kind in ("sync", "server.heartbeat"):
            return
        if kind == "server.connected":
            if not self._stream_ready.is_set():
                self._stream_ready.set()
                for session in list(self._sessions.values()):
                    session.notify("_resync")
            return
        props = payload.get("properties")
        if not isinstance(props, dict):
            return
        session_id = props.get("sessionID")
        if not isinstance(session_id, str):
            return
        target = self._sessions.get(session_id)
        if target is not None:
            target.deliver(kind, props)
            return
        if kind == "session.created":
            parent = str((props.get("info") or {}).get("parentID") or "")
            parent = self._children.get(parent, parent)
            if parent in self._sessions:
                self._children[session_id] = parent
        root = self._children.get(session_id)
        if root is not None and root in self._sessions:
            self._sessions[root].deliver(kind, props, child=True)

    # -- sessions ----------------------------------------------------------------------

    def unregister(self, session: OpenCodeSession) -> None:
        sid = session.opencode_session_id
        if self._sessions.get(sid) is session:
            del self._sessions[sid]
            for child in [c for c, root in self._children.items() if root == sid]:
                del self._children[child]

    async def release_directory(self, directory: str) -> None:
        """Dispose of the server's instance for a directory no open session uses any more:
        it holds file watchers (three threads each) and memory; the next request for the
        directory boots it again (about 0.5-1 s on the first turn)."""
        if not self.server_alive or any(s.directory == directory for s in self.sessions):
            return
        with contextlib.suppress(ProtocolError):
            await self.request("POST", "/instance/dispose", directory=directory, timeout=5.0)

    async def _open_session(self, spec: AgentStartSpec, directory: str) -> str:
        """The OpenCode session of this provider session id: the mapped one when it still
        exists in the same directory, else a new one."""
        path = spec.state_dir / SESSION_MAP
        try:
            mapping = json.loads(path.read_text())
        except (OSError, ValueError):
            mapping = {}
        mapping = mapping if isinstance(mapping, dict) else {}
        entry = mapping.get(spec.provider_session_id)
        if isinstance(entry, dict) and entry.get("directory") == directory:
            try:
                info = await self.request("GET", f"/session/{entry.get('id')}", directory=directory)
            except HttpStatusError as exc:
                if exc.status not in (400, 404):
                    raise
                log.info("OpenCode session %s is gone; starting a new one", entry.get("id"))
            else:
                if isinstance(info, dict) and info.get("id") == entry.get("id"):
                    if info.get("permission") != SESSION_RULES:
                        await self.request(
                            "PATCH",
                            f"/session/{info['id']}",
                            directory=directory,
                            body={"permission": SESSION_RULES},
                        )
                    return str(info["id"])
        # a title of our own also spares the model call OpenCode makes to invent one
        created = await self.request(
            "POST",
            "/session",
            directory=directory,
            body={"title": f"HotPlex {spec.session_id}", "permission": SESSION_RULES},
        )
        if not isinstance(created, dict) or not isinstance(created.get("id"), str):
            raise ProtocolError(f"POST /session answered {created!r:.200}")
        session_id = str(created["id"])
        mapping[spec.provider_session_id] = {"id": session_id, "directory": directory}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(mapping, indent=1))
        tmp.replace(path)
        return session_id

    async def start(self, spec: AgentStartSpec, gate: ToolGate) -> OpenCodeSession:
        spec.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        spec.work_dir.mkdir(parents=True, exist_ok=True)
        directory = str(spec.work_dir.resolve())
        await self._ensure_server(spec.env)
        await self.wait_stream(10.0)
        try:
            session_id = await self._open_session(spec, directory)
        except ProtocolError as exc:
            raise AgentStartError(f"cannot open an OpenCode session: {exc}") from exc
        old = self._sessions.get(session_id)
        if old is not None:
            await old.close(1.0)
        session = OpenCodeSession(self, session_id, directory, gate)
        self._sessions[session_id] = session
        return session

    @property
    def sessions(self) -> Sequence[OpenCodeSession]:
        return list(self._sessions.values())

    async def aclose(self) -> None:
        """Stop the shared server's process group and the background tasks."""
        if self._closed:
            return
        self._closed = True
        for session in list(self._sessions.values()):
            await session.close(1.0)
        await cancel_and_wait(self._watchdog, self._reader)
        server, self._server = self._server, None
        self._ready.clear()
        if self._http is not None:  # open connections hold up the server's shutdown
            await self._http.close()
            self._http = None
        if server is not None:
            await self._stop(server, 5.0)
