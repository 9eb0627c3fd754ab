"""The web chat and dashboard at ``/``: three static files and the setup report.

The page (``static/index.html``, ``app.js``, ``style.css``; no build step, nothing from a
CDN) talks to the daemon only through the public WebSocket protocol (``/ws/v1/agent``) and
the admin API (``/admin/v1/...``), like any other client. The files are public: the page
asks for the API key and keeps it in the browser. ``GET /api/v1/setup`` tells the page
(and anyone) whether the agent can start, and what fixes it when not. See docs/webchat.md.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiohttp import web

from hotplex.runtime import Runtime
from hotplex.web.setup import SetupReport, setup_lines, setup_report

__all__ = ["STATIC_DIR", "add_web_routes", "setup_lines", "setup_report"]

STATIC_DIR = Path(__file__).parent / "static"
#: The files the page is made of, and how they are served.
STATIC_FILES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "style.css": "text/css",
}
#: How long one setup report is reused: the provider check starts the agent binary.
SETUP_TTL = 10.0

#: Scripts and styles only from the daemon itself, no inline script, no framing.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def add_web_routes(app: web.Application, runtime: Runtime) -> None:
    """``GET /`` (the page), ``GET /web/{name}`` (its script and style) and
    ``GET /api/v1/setup`` (the setup report, JSON)."""
    files = {name: (STATIC_DIR / name).read_bytes() for name in STATIC_FILES}

    def serve(name: str) -> web.Response:
        return web.Response(
            body=files[name],
            content_type=STATIC_FILES[name],
            charset="utf-8",
            headers=HEADERS,
        )

    async def index(request: web.Request) -> web.Response:
        return serve("index.html")

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in files or name == "index.html":
            raise web.HTTPNotFound()
        return serve(name)

    cache: list[tuple[float, SetupReport]] = []
    lock = asyncio.Lock()

    from hotplex.gateway.security import host_allowed  # the gateway imports this module

    async def setup(request: web.Request) -> web.Response:
        if not host_allowed(runtime.settings.server, request):  # no DNS-rebound page reads it
            raise web.HTTPForbidden()
        async with lock:  # one check at a time, however many pages ask
            if not cache or time.monotonic() - cache[0][0] > SETUP_TTL:
                report = await asyncio.to_thread(setup_report, runtime.ctx)
                cache[:] = [(time.monotonic(), report)]
            report = cache[0][1]
        return web.json_response(report.to_dict(), headers={"Cache-Control": "no-store"})

    app.router.add_get("/", index, name="web_index")
    app.router.add_get("/web/{name}", asset, name="web_asset")
    app.router.add_get("/api/v1/setup", setup, name="api_setup")
