"""The admin API (``/admin/v1/...``): sessions, their events, stats and the audit log.

Every route needs the admin token (``Authorization: Bearer <server.admin_token>``); with no
token configured only loopback callers get in. A session is named by its engine session id
(what ``GET /admin/v1/sessions`` lists), never by a client's own id. Errors are JSON
``{"error": {"code", "message"}}``. docs/admin.md has the reference.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from hotplex import __version__
from hotplex.engine import ENGINE, Engine
from hotplex.engine.session import SessionInfo
from hotplex.gateway.security import admin_guard
from hotplex.interfaces import Storage
from hotplex.runtime import Runtime
from hotplex.services import STORAGE
from hotplex.types import ApprovalRequest

__all__ = ["MAX_LIMIT", "add_admin_routes"]

MAX_LIMIT = 1000
EVENTS_LIMIT = 100
AUDIT_LIMIT = 100
PREFIX = "/admin/v1"


class AdminError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


class Admin:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.started = time.monotonic()

    # -- services ----------------------------------------------------------------------

    def engine(self) -> Engine:
        engine = self.runtime.ctx.services.find(ENGINE)
        if engine is None:
            raise AdminError(503, "unavailable", "The engine is not running.")
        return engine

    def storage(self) -> Storage:
        storage = self.runtime.ctx.services.find(STORAGE)
        if storage is None:
            raise AdminError(503, "unavailable", "No storage is configured.")
        return storage

    # -- handlers ----------------------------------------------------------------------

    async def list_sessions(self, request: web.Request) -> web.Response:
        infos = sorted(self.engine().sessions(), key=lambda i: i.session_id)
        return web.json_response({"sessions": [_session(i) for i in infos]})

    async def show_session(self, request: web.Request) -> web.Response:
        engine = self.engine()
        session = engine.get(request.match_info["session_id"])
        if session is None:
            raise _unknown(request.match_info["session_id"])
        body = _session(session.info())
        body["pending_approvals"] = [
            _approval(p) for p in engine.approvals.pending(session.session_id)
        ]
        return web.json_response(body)

    async def kill_session(self, request: web.Request) -> web.Response:
        session_id = request.match_info["session_id"]
        if not await self.engine().stop_session(session_id, by="admin"):
            raise _unknown(session_id)
        return web.json_response({"session_id": session_id, "killed": True})

    async def session_events(self, request: web.Request) -> web.Response:
        session_id = request.match_info["session_id"]
        since = _int(request, "since_seq", 0, minimum=0)
        limit = _int(request, "limit", EVENTS_LIMIT, minimum=1, maximum=MAX_LIMIT)
        storage = self.storage()
        if self.engine().get(session_id) is None and await storage.get_session(session_id) is None:
            raise _unknown(session_id)
        events = await storage.read_events(session_id, since_seq=since, limit=limit)
        return web.json_response(
            {
                "session_id": session_id,
                "events": [e.to_dict() for e in events],
                "next_since_seq": events[-1].seq if events else since,
                "more": len(events) == limit,
            }
        )

    async def stats(self, request: web.Request) -> web.Response:
        engine = self.engine()
        infos = engine.sessions()
        by_state: dict[str, int] = {"idle": 0, "running": 0, "stopped": 0}
        for info in infos:
            by_state[info.state] = by_state.get(info.state, 0) + 1
        settings = self.runtime.settings
        return web.json_response(
            {
                "version": __version__,
                "uptime_seconds": round(time.monotonic() - self.started, 3),
                "live_processes": engine.live_processes,
                "max_sessions": settings.engine.max_sessions,
                "sessions": len(infos),
                "sessions_by_state": by_state,
                "pending_approvals": len(engine.approvals.pending()),
                "turns": sum(i.turns for i in infos),
                "input_tokens": sum(i.input_tokens for i in infos),
                "output_tokens": sum(i.output_tokens for i in infos),
                "cost_usd": round(sum(i.cost_usd for i in infos), 6),
                "limit_backend": engine.limit_backend,
                "storage": settings.storage_url.split("://", 1)[0]
                if self.runtime.ctx.services.find(STORAGE) is not None
                else None,
                "adapters": {n: a.state() for n, a in sorted(self.runtime.adapters.items())},
                "sinks": self.runtime.sinks.stats(),
            }
        )

    async def audit(self, request: web.Request) -> web.Response:
        types = [t for raw in request.query.getall("type", []) for t in raw.split(",") if t]
        since = _float(request, "since")
        limit = _int(request, "limit", AUDIT_LIMIT, minimum=1, maximum=MAX_LIMIT)
        before = _int(request, "before_id", None, minimum=1)
        records = await self.storage().read_audit(
            types=types or None,
            session_id=request.query.get("session_id") or None,
            since=since,
            limit=limit,
            before_id=before,
        )
        return web.json_response(
            {
                "audit": [r.to_dict() for r in records],
                "next_before_id": records[-1].id if len(records) == limit else None,
            }
        )


def _unknown(session_id: str) -> AdminError:
    return AdminError(404, "unknown_session", f"No session {session_id!r}.")


def _session(info: SessionInfo) -> dict[str, Any]:
    body = dataclasses.asdict(info)
    body["address"] = info.address or info.key
    body["idle_seconds"] = round(info.idle_seconds, 3)
    return body


def _approval(request: ApprovalRequest) -> dict[str, Any]:
    body = dataclasses.asdict(request)
    body["input"] = dict(request.input)
    return body


def _int(
    request: web.Request,
    name: str,
    default: int | None,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> Any:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise AdminError(400, "invalid_query", f"{name} must be an integer") from None
    if minimum is not None and value < minimum:
        raise AdminError(400, "invalid_query", f"{name} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise AdminError(400, "invalid_query", f"{name} must be at most {maximum}")
    return value


def _float(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise AdminError(400, "invalid_query", f"{name} must be a Unix time in seconds") from None


Handler = Callable[[web.Request], Awaitable[web.Response]]


def _json_errors(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except AdminError as exc:
            return _error(exc.status, exc.code, exc.message)

    return wrapped


def add_admin_routes(app: web.Application, runtime: Runtime) -> None:
    admin = Admin(runtime)
    settings = runtime.settings
    router = app.router

    def route(method: str, path: str, handler: Handler, name: str) -> None:
        router.add_route(
            method, PREFIX + path, admin_guard(settings, _json_errors(handler)), name=name
        )

    route("GET", "/sessions", admin.list_sessions, "admin_sessions")
    route("GET", "/sessions/{session_id}", admin.show_session, "admin_session")
    route("DELETE", "/sessions/{session_id}", admin.kill_session, "admin_session_kill")
    route("GET", "/sessions/{session_id}/events", admin.session_events, "admin_session_events")
    route("GET", "/stats", admin.stats, "admin_stats")
    route("GET", "/audit", admin.audit, "admin_audit")
