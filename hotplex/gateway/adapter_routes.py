"""The routes a chat adapter instance serves (``ChatAdapter.http_routes``), e.g. an
HTTP-mode platform's callbacks.

Adapters are built when the runtime starts, after aiohttp's router is frozen, so the
gateway mounts one prefix per enabled adapter, ``/<name>/``, and hands each request to the
route of the running instance with the same method and path. An adapter's routes live under
its own prefix; one outside it is refused (logged) and never served. Before the adapter runs,
its prefix answers 503; a path it does not serve answers 404.
"""

from __future__ import annotations

import logging

from aiohttp import web

from hotplex.config import Settings
from hotplex.gateway.auth import Handler, protect
from hotplex.gateway.security import admin_guard
from hotplex.interfaces import ChatAdapter
from hotplex.records import RouteSpec
from hotplex.runtime import Runtime

__all__ = ["add_adapter_routes"]

log = logging.getLogger(__name__)


def guarded(settings: Settings, spec: RouteSpec) -> Handler:
    """The route's handler behind the auth it declares (as for plugin routes)."""
    if spec.auth == "admin":
        return admin_guard(settings, spec.handler)
    return protect(settings, spec.auth, spec.handler)


class AdapterRoutes:
    """The handler of one adapter's prefix: the running instance's routes, by method and path."""

    def __init__(self, runtime: Runtime, name: str) -> None:
        self.runtime = runtime
        self.name = name
        self.prefix = f"/{name}/"
        self._adapter: ChatAdapter | None = None
        self._table: dict[tuple[str, str], Handler] = {}

    def _routes(self, adapter: ChatAdapter) -> dict[tuple[str, str], Handler]:
        if adapter is not self._adapter:  # once per instance
            table: dict[tuple[str, str], Handler] = {}
            for spec in adapter.http_routes():
                if not spec.path.startswith(self.prefix):
                    log.error(
                        "chat adapter %r: route %s %s is outside %s; not served",
                        self.name,
                        spec.method,
                        spec.path,
                        self.prefix,
                    )
                    continue
                table[(spec.method.upper(), spec.path)] = guarded(self.runtime.settings, spec)
            self._adapter, self._table = adapter, table
        return self._table

    async def handle(self, request: web.Request) -> web.StreamResponse:
        adapter = self.runtime.adapters.get(self.name)
        if adapter is None:
            raise web.HTTPServiceUnavailable(text=f"The {self.name} adapter is not running yet.")
        routes = self._routes(adapter)
        handler = routes.get((request.method, request.path)) or routes.get(("*", request.path))
        if handler is None:
            raise web.HTTPNotFound(text=f"No route {request.method} {request.path}.")
        return await handler(request)


def add_adapter_routes(app: web.Application, runtime: Runtime) -> None:
    """Mount ``/<name>/`` for every enabled chat adapter (after the plugins' own routes, so
    an explicit route of the same path wins)."""
    for name in runtime.ctx.plugins.chat_adapters():
        if runtime.enabled(name):
            app.router.add_route("*", f"/{name}/{{tail:.*}}", AdapterRoutes(runtime, name).handle)
