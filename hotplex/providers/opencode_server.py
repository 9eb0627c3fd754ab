"""The shared ``opencode serve`` process: started on the first session, in its own process
group, healthy when ``/global/health`` says so; a watchdog restarts it when it exits or
fails ``health_failures`` checks in a row (a hung server)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from hotplex.agent_process import AgentSubprocess
from hotplex.aio import cancel_and_wait
from hotplex.binaries import find_binary
from hotplex.config import ProviderSettings
from hotplex.errors import AgentStartError
from hotplex.providers import opencode_config
from hotplex.providers.opencode_http import ServerProcess, free_port
from hotplex.providers.opencode_stream import OpenCodeEvents

__all__ = ["HEALTH_FAILURES", "HEALTH_INTERVAL", "START_TIMEOUT", "OpenCodeServer"]

log = logging.getLogger("hotplex.providers.opencode")

START_TIMEOUT = 30.0
HEALTH_INTERVAL = 5.0
HEALTH_FAILURES = 3


class OpenCodeServer(OpenCodeEvents):
    """Starts, watches and restarts the provider's one ``opencode serve``."""

    settings: ProviderSettings
    state_root: Path
    start_timeout: float
    health_interval: float
    health_failures: int
    health_timeout: float
    starts: int
    _binary: Path | None
    _env: dict[str, str] | None
    _mcp_servers: dict[str, Mapping[str, Any]]
    _start_lock: asyncio.Lock
    _launched: asyncio.Event
    _watchdog: asyncio.Task[None] | None
    _reader: asyncio.Task[None] | None

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

    def opencode_config(self, env: Mapping[str, str]) -> dict[str, Any]:
        """What goes into ``OPENCODE_CONFIG_CONTENT`` (merged over any given in env)."""
        return opencode_config.opencode_config(self.settings, env, self._mcp_servers)

    def server_env(self, env: Mapping[str, str], password: str) -> dict[str, str]:
        return opencode_config.server_env(self.state_root, self.opencode_config(env), env, password)

    async def _ensure_server(
        self, env: Mapping[str, str], mcp_servers: Mapping[str, Mapping[str, Any]]
    ) -> None:
        if self._closed:
            raise AgentStartError("the OpenCode provider is closed")
        if self._env is None:  # the first session's environment and MCP servers stay
            self._env = dict(env)
            self._mcp_servers = dict(mcp_servers)
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

    async def wait_started(self, count: int) -> None:
        """Wait until the server has been started ``count`` times in all and is up (a
        restart is one more start); bound it with a timeout."""
        while True:
            launched = self._launched
            if self.starts >= count and self.server_alive:
                return
            await launched.wait()

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
        opencode_config.link_auth(self.state_root, self._env)
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.request_timeout)
            )
        error = "no attempt"
        for _ in range(3):  # a port taken between probing and binding: try another one
            port = free_port()
            password = secrets.token_urlsafe(24)
            argv = [str(self.binary), "serve", "--hostname", "127.0.0.1", "--port", str(port)]
            sub = await AgentSubprocess.spawn(
                argv, cwd=self.state_root, env=self.server_env(self._env, password)
            )
            drain = asyncio.create_task(self._drain(sub), name=f"opencode-stdout:{sub.pid}")
            server = ServerProcess(sub, port, password, drain)
            deadline = time.monotonic() + self.start_timeout
            try:
                while sub.running and time.monotonic() < deadline:
                    if await self._healthy(server, timeout=2.0):
                        self._server = server
                        self.starts += 1
                        self._ready.set()
                        self._launched.set()
                        self._launched = asyncio.Event()
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

    async def _stop(self, server: ServerProcess, grace: float) -> None:
        with contextlib.suppress(OSError):  # a stopped (hung) server could not act on SIGTERM
            os.killpg(server.sub.pgid, signal.SIGCONT)
        with contextlib.suppress(AgentStartError):
            await server.sub.stop(grace)
        await cancel_and_wait(server.drain)

    async def _healthy(self, server: ServerProcess, timeout: float = 5.0) -> bool:
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

    async def _watch_one(self, server: ServerProcess) -> str:
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
