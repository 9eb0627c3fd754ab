"""Builds the aiohttp application: core routes plus every plugin's routes.

The runtime is entered through ``cleanup_ctx``, so every resource it starts is stopped
when the application shuts down, and only if it started.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from hotplex.gateway.adapter_routes import add_adapter_routes
from hotplex.gateway.auth import protect
from hotplex.gateway.routes import add_client_routes
from hotplex.gateway.security import admin_guard
from hotplex.gateway.throttle import FAILED_AUTH, FailedAuth
from hotplex.runtime import Runtime

__all__ = ["RUNTIME_KEY", "build_app"]

RUNTIME_KEY = web.AppKey("runtime", Runtime)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def build_app(runtime: Runtime) -> web.Application:
    app = web.Application(client_max_size=runtime.settings.server.max_body_bytes)
    app[RUNTIME_KEY] = runtime
    app[FAILED_AUTH] = FailedAuth(runtime.settings.server.failed_auth)

    async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
        async with runtime:
            yield

    app.cleanup_ctx.append(runtime_ctx)
    app.router.add_get("/healthz", healthz, name="healthz")
    add_client_routes(app, runtime)

    async def replay(app: web.Application) -> None:  # runs after the runtime started
        await runtime.replay_inbound()

    app.on_startup.append(replay)
    settings = runtime.settings
    for spec in runtime.ctx.plugins.routes():
        handler = (
            admin_guard(settings, spec.handler)
            if spec.auth == "admin"
            else protect(settings, spec.auth, spec.handler)
        )
        app.router.add_route(spec.method, spec.path, handler, name=spec.name or None)
    add_adapter_routes(app, runtime)
    return app
