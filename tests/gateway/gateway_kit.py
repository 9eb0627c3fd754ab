"""Kit of the gateway tests: a running gateway on 127.0.0.1 with the fake provider, an
in-memory storage fed by a sink (as the storage sink feeds the database), and clients for
two API keys."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp.test_utils import TestClient, TestServer

from hotplex import hookimpl
from hotplex.compose import compose
from hotplex.config import load_settings
from hotplex.engine import ENGINE, Engine
from hotplex.errors import StorageError
from hotplex.events import AgentEvent, AuditEvent
from hotplex.gateway import build_app
from hotplex.gateway.clients import GATEWAY_KEY, Gateway
from hotplex.interfaces import Middleware, MiddlewareContext, Next
from hotplex.outbox import OutboxEntry
from hotplex.plugins import make_plugin_manager
from hotplex.records import MiddlewareSpec, ProviderSpec, StorageSpec
from hotplex.runtime import Runtime
from hotplex.storage.sql import SqlStorage
from hotplex.testing.fakes import FakeProvider

KEYS = {"alice": "k-alice-0123456789", "bob": "k-bob-0123456789"}
ADMIN_TOKEN = "admin-token-0123456789"
WAIT = 5.0


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]}"}


class MemoryStorage(SqlStorage):
    """The real SQLite storage, observed: every event it stores is also kept in ``events``
    (for assertions), and ``broken`` makes reads fail like a lost database."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.events: list[AgentEvent] = []
        self.stored = asyncio.Event()
        self.broken = False

    def _observe(self, events: Sequence[AgentEvent]) -> None:
        have = {(e.session_id, e.seq) for e in self.events}  # an existing event is kept
        self.events.extend(e for e in events if (e.session_id, e.seq) not in have)
        self.stored.set()

    async def append_batch(
        self,
        events: Sequence[AgentEvent],
        audit: Sequence[AuditEvent],
        *,
        outbox: Sequence[OutboxEntry] = (),
    ) -> None:
        await super().append_batch(events, audit, outbox=outbox)
        self._observe(events)

    async def read_events(
        self, session_id: str, *, since_seq: int = 0, limit: int = 1000
    ) -> list[AgentEvent]:
        if self.broken:
            raise StorageError("the database is gone")
        return await super().read_events(session_id, since_seq=since_seq, limit=limit)

    def of(self, session_id: str) -> list[AgentEvent]:
        return [e for e in self.events if e.session_id == session_id]


class Refuser(Middleware):
    """Stops the prompt ``forbidden``, as the WAF would stop a dangerous one."""

    async def process(self, ctx: MiddlewareContext, call_next: Next) -> None:
        if ctx.message.text == "forbidden":
            ctx.reply = f"Refused for {ctx.message.user} on {ctx.message.platform}."
            return
        await call_next(ctx)


@dataclass
class Harness:
    client: TestClient[Any, Any]
    runtime: Runtime
    provider: FakeProvider
    storage: MemoryStorage
    sockets: list[aiohttp.ClientWebSocketResponse] = field(default_factory=list)

    @property
    def gateway(self) -> Gateway:
        return self.client.server.app[GATEWAY_KEY]

    @property
    def engine(self) -> Engine:
        return self.runtime.ctx.services.get(ENGINE)

    def engine_id(self, key: str, client_id: str) -> str:
        return self.engine.session_id(f"web:{key}/{client_id}")

    async def ws(self, key: str | None = "alice", **kwargs: Any) -> aiohttp.ClientWebSocketResponse:
        headers = {**(auth(key) if key else {}), **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", aiohttp.ClientWSTimeout(ws_close=2.0))
        ws = await self.client.ws_connect("/ws/v1/agent", headers=headers, **kwargs)
        self.sockets.append(ws)
        return ws

    def post(self, path: str, body: Any = None, key: str | None = "alice", **kwargs: Any) -> Any:
        headers = {**(auth(key) if key else {}), **kwargs.pop("headers", {})}
        if body is not None and "data" not in kwargs:
            kwargs["json"] = body
        return self.client.post(path, headers=headers, **kwargs)

    async def until_stored(self, predicate: Callable[[list[AgentEvent]], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not predicate(self.storage.events):
                self.storage.stored.clear()
                await self.storage.stored.wait()


async def frames_until(
    ws: aiohttp.ClientWebSocketResponse,
    done: Callable[[dict[str, Any]], bool],
    timeout: float = WAIT,
) -> list[dict[str, Any]]:
    """Frames received until one satisfies ``done`` (included)."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive()
            assert message.type is aiohttp.WSMsgType.TEXT, message
            frame = json.loads(message.data)
            frames.append(frame)
            if done(frame):
                return frames


def is_done(session_id: str | None = None) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f["type"] == "done" and session_id in (None, f["session_id"])


def is_type(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f["type"] == kind


@dataclass
class SseEvent:
    id: str | None
    event: str | None
    data: dict[str, Any] | None
    comment: str | None = None


async def read_sse(
    response: aiohttp.ClientResponse,
    stop: Callable[[SseEvent], bool] | None = None,
    timeout: float = WAIT,
) -> list[SseEvent]:
    """Parse the stream until ``stop`` says so (or it ends); comments come as events too."""
    found: list[SseEvent] = []
    fields: dict[str, str] = {}
    async with asyncio.timeout(timeout):
        while True:
            raw = await response.content.readline()
            if not raw:
                return found
            line = raw.decode().rstrip("\n")
            if line.startswith(":"):
                found.append(SseEvent(None, None, None, comment=line[1:].strip()))
            elif line:
                name, _, value = line.partition(": ")
                fields[name] = value
                continue
            else:
                if not fields:
                    continue
                data = json.loads(fields["data"]) if "data" in fields else None
                found.append(SseEvent(fields.get("id"), fields.get("event"), data))
                fields = {}
            if stop is not None and stop(found[-1]):
                return found


def make_harness(
    tmp_path: Path,
) -> Callable[..., AbstractAsyncContextManager[Harness]]:
    @asynccontextmanager
    async def harness(
        server: Mapping[str, Any] | None = None,
        *,
        keys: bool = True,
        storage: bool = True,
        engine: Mapping[str, Any] | None = None,
        provider: FakeProvider | None = None,
        security: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[Harness]:
        fake = provider or FakeProvider()
        url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'gateway.db'}"
        memory = MemoryStorage(url)

        class Plugin:
            @hookimpl
            def hotplex_register_providers(self) -> list[ProviderSpec]:
                return [ProviderSpec("fake", lambda ctx: fake)]

            @hookimpl
            def hotplex_register_middleware(self) -> list[MiddlewareSpec]:
                return [MiddlewareSpec("refuser", lambda ctx: Refuser())]

            @hookimpl
            def hotplex_register_storage(self) -> list[StorageSpec]:  # replaces the default
                return [StorageSpec("observed", ("sqlite+aiosqlite",), lambda ctx, u: memory)]

        pm = make_plugin_manager(entry_points=False, environ={})
        pm.register(Plugin(), "gateway-test")
        section: dict[str, Any] = {"rate_limit": {"enabled": False}}
        if keys:
            section["api_keys"] = [{"name": n, "key": k} for n, k in KEYS.items()]
            section["admin_token"] = ADMIN_TOKEN
        section.update(server or {})
        raw: dict[str, Any] = {
            "server": section,
            "engine": {"data_dir": str(tmp_path / "data"), **(engine or {})},
            "provider": {"type": "fake"},
            "security": dict(security or {}),
        }
        raw["storage"] = {"url": url, "enabled": storage}
        settings = load_settings(None, text=yaml.safe_dump(raw), environ={}).settings
        runtime = compose(settings, pm)
        async with TestClient(TestServer(build_app(runtime), host="127.0.0.1")) as client:
            h = Harness(client, runtime, fake, memory)
            try:
                yield h
            finally:
                for ws in h.sockets:
                    await ws.close()

    return harness


HarnessFactory = Callable[..., AbstractAsyncContextManager[Harness]]
