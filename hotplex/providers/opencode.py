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

The provider is split by concept: :mod:`.opencode_config` (the server's environment),
:mod:`.opencode_http` (API calls), :mod:`.opencode_stream` (the event pump),
:mod:`.opencode_server` (process and watchdog), :mod:`.opencode_session` (turns) and
:mod:`.opencode_permissions` (the gate); this module ties them into the provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from hotplex.aio import cancel_and_wait
from hotplex.config import ProviderSettings
from hotplex.errors import AgentStartError, ProtocolError
from hotplex.interfaces import Provider, ToolGate
from hotplex.providers.opencode_config import DEFAULT_ENV
from hotplex.providers.opencode_events import SESSION_RULES
from hotplex.providers.opencode_http import (
    REQUEST_TIMEOUT,
    USERNAME,
    HttpStatusError,
    ServerProcess,
    ServerUnavailable,
)
from hotplex.providers.opencode_server import (
    HEALTH_FAILURES,
    HEALTH_INTERVAL,
    START_TIMEOUT,
    OpenCodeServer,
)
from hotplex.providers.opencode_session import ABORT_GRACE, OpenCodeSession
from hotplex.providers.opencode_stream import MAX_FRAME, SSE_READ_TIMEOUT
from hotplex.types import AgentStartSpec

if TYPE_CHECKING:
    from hotplex.agent_tools import AgentToolBridge, CallGrants

__all__ = [
    "ABORT_GRACE",
    "DEFAULT_ENV",
    "HEALTH_FAILURES",
    "HEALTH_INTERVAL",
    "MAX_FRAME",
    "POLL_INTERVAL",
    "REQUEST_TIMEOUT",
    "RETRY_DEADLINE",
    "SESSION_MAP",
    "SSE_READ_TIMEOUT",
    "START_TIMEOUT",
    "USERNAME",
    "HttpStatusError",
    "OpenCodeProvider",
    "OpenCodeSession",
    "ServerUnavailable",
]

log = logging.getLogger(__name__)

SESSION_MAP = "opencode-session.json"
RETRY_DEADLINE = 120.0
#: A running turn that hears nothing for this long asks the server for the session's status.
POLL_INTERVAL = 5.0


class OpenCodeProvider(OpenCodeServer, Provider):
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
        agent_tools: AgentToolBridge | None = None,
    ) -> None:
        self.settings = settings
        #: HotPlex's agent tools, served by a ``hotplex`` MCP server per work directory.
        self.agent_tools = agent_tools if agent_tools is not None and agent_tools.tools else None
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
        self._mcp_servers: dict[str, Mapping[str, Any]] = {}
        self._server: ServerProcess | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ready = asyncio.Event()
        self._stream_ready = asyncio.Event()
        self._start_lock = asyncio.Lock()
        self._launched = asyncio.Event()  # set (and replaced) at every start
        self._watchdog: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._stream: aiohttp.ClientResponse | None = None
        self._sessions: dict[str, OpenCodeSession] = {}
        self._children: dict[str, str] = {}
        self._windows: dict[tuple[str, str], int] = {}
        self._closed = False
        #: How many times the server was (re)started; tests and metrics read it.
        self.starts = 0

    def profile(self) -> str:
        return "\0".join(
            ["opencode", str(self._binary or self.settings.binary or ""), self.settings.model or ""]
        )

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
        servers: dict[str, Mapping[str, Any]] = {}
        if self.agent_tools is not None:
            from hotplex.agent_tools import SERVER_NAME

            servers[SERVER_NAME] = await self.agent_tools.shared_server()
        await self._ensure_server(spec.env, servers)
        await self.wait_stream(10.0)
        try:
            session_id = await self._open_session(spec, directory)
        except ProtocolError as exc:
            raise AgentStartError(f"cannot open an OpenCode session: {exc}") from exc
        old = self._sessions.get(session_id)
        if old is not None:
            await old.close(1.0)
        session = OpenCodeSession(self, session_id, directory, gate, agent_id=spec.session_id)
        self._sessions[session_id] = session
        return session

    def agent_tool_grants(self) -> CallGrants | None:
        """The grants of the agent-tool bridge the server's ``hotplex`` MCP server talks
        to (None when the provider serves no agent tools)."""
        return self.agent_tools.grants if self.agent_tools is not None else None

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
