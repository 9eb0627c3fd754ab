"""Run ``hotplex serve`` as a real subprocess for end-to-end tests, and talk to it.

daemon = Daemon(config_path)
await daemon.start()                  # waits for "serving on http://..."
async with daemon.client("key") as ws_client:
    events = await ws_client.execute("s1", "hello")
await daemon.stop()                   # SIGTERM, bounded wait; daemon.kill() is SIGKILL
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

__all__ = ["Daemon", "GatewayClient"]

_SERVING = re.compile(r"serving on (http://[^ ]+?)/? ")


class Daemon:
    def __init__(self, config: Path, *, env: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.env = {**os.environ, "HOTPLEX_DISABLE_PLUGINS": "", **(env or {})}
        self.env.pop("HOTPLEX_CONFIG", None)
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""
        self.log: list[str] = []
        self._drain: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, timeout: float = 30.0) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hotplex",
            "--config",
            str(self.config),
            "serve",
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.proc.stdout.readline()).decode(errors="replace")
                if not line:
                    raise RuntimeError("hotplex serve exited:\n" + "".join(self.log[-40:]))
                self.log.append(line)
                match = _SERVING.search(line)
                if match:
                    self.url = match.group(1)
                    break
        self._drain = asyncio.create_task(self._keep_reading())

    async def _keep_reading(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.log.append(line.decode(errors="replace"))
            del self.log[:-500]

    async def _finish(self, sig: signal.Signals, timeout: float) -> int:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout)
        finally:
            if self._drain is not None:
                self._drain.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._drain
        return code

    async def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; the daemon's exit code."""
        return await self._finish(signal.SIGTERM, timeout)

    async def kill(self) -> int:
        """SIGKILL the daemon process alone (its agents live in their own groups)."""
        return await self._finish(signal.SIGKILL, 10.0)

    @asynccontextmanager
    async def client(self, api_key: str) -> AsyncIterator[GatewayClient]:
        import aiohttp

        headers = {"Authorization": f"Bearer {api_key}"}
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(
                f"{self.url}/ws/v1/agent",
                headers=headers,
                timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
            )
            try:
                yield GatewayClient(ws)
            finally:
                await ws.close()


class GatewayClient:
    """The WebSocket protocol, one turn at a time."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def execute(
        self,
        session_id: str,
        prompt: str,
        *,
        timeout: float = 60.0,
        seen: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Send a prompt; the frames of its turn up to ``done`` (also appended to ``seen``
        as they arrive, so a caller killed mid-turn keeps what it saw)."""
        frames: list[dict[str, Any]] = [] if seen is None else seen
        await self.ws.send_json({"type": "execute", "session_id": session_id, "prompt": prompt})
        async with asyncio.timeout(timeout):
            while True:
                message = await self.ws.receive()
                if message.type.name != "TEXT":
                    raise ConnectionError(f"socket ended: {message.type.name}")
                frame = json.loads(message.data)
                frames.append(frame)
                if frame.get("type") == "error" and "seq" not in frame:
                    raise RuntimeError(f"error frame: {frame}")
                if frame.get("type") == "done":
                    return frames
