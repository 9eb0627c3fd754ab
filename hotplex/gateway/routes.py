"""The client routes on the gateway's port: WebSocket, SSE and the JSON API."""

from __future__ import annotations

from aiohttp import web

from hotplex.gateway import api, sse, ws
from hotplex.gateway.admin import add_admin_routes
from hotplex.gateway.clients import GATEWAY_KEY, Gateway
from hotplex.gateway.observability import add_observability_routes
from hotplex.gateway.opencode import Hub, add_opencode_routes
from hotplex.gateway.security import cors_headers, guard, preflight
from hotplex.runtime import Runtime
from hotplex.web import add_web_routes

__all__ = ["add_client_routes"]


def add_client_routes(app: web.Application, runtime: Runtime) -> Gateway:
    gateway = Gateway(runtime)
    app[GATEWAY_KEY] = gateway
    runtime.replayers["web"] = gateway.replay
    router = app.router
    router.add_get("/ws/v1/agent", guard(gateway, ws.handle), name="ws_agent")
    router.add_post("/api/v1/execute", guard(gateway, sse.execute), name="api_execute")
    router.add_post(
        "/api/v1/sessions/{session_id}/interrupt",
        guard(gateway, api.interrupt),
        name="api_interrupt",
    )
    router.add_post(
        "/api/v1/permissions/{permission_id}",
        guard(gateway, api.permission),
        name="api_permission",
    )
    router.add_route("OPTIONS", "/api/v1/{tail:.*}", preflight, name="api_preflight")
    app.on_response_prepare.append(cors_headers)
    app.on_shutdown.append(gateway.shutdown)
    add_admin_routes(app, runtime)
    add_observability_routes(app, runtime)
    add_web_routes(app, runtime)
    add_opencode_routes(app, Hub(gateway))
    return gateway
