"""The guards in front of every client route (:func:`guard`) and admin route
(:func:`admin_guard`), and CORS for the HTTP API.

For a client route, in order: the ``Host`` (with no API keys configured, only loopback
names: a web page that rebinds its DNS name to 127.0.0.1 is refused), the ``Origin`` (a
browser's request from a page that is neither same-origin nor in ``server.allowed_origins``
gets 403; clients that send no Origin pass), the address's failed authentications
(``server.failed_auth``: 429 with Retry-After once too many), the key (bare 401, counted),
then the key's ``server.rate_limit.requests`` bucket (429 with Retry-After, naming the
limit).
"""

from __future__ import annotations

import ipaddress
import math
from urllib.parse import urlsplit

from aiohttp import web

from hotplex.config import ServerSettings, Settings
from hotplex.engine.approvals import ADMIN
from hotplex.gateway import throttle
from hotplex.gateway.auth import (
    API_KEY_NAME,
    Handler,
    api_key_name,
    is_admin,
    note_refusal,
    protect,
)
from hotplex.gateway.clients import CALLER, GATEWAY_KEY, Caller, Gateway
from hotplex.gateway.frames import GatewayError

__all__ = [
    "admin_guard",
    "cors_headers",
    "error_response",
    "guard",
    "host_allowed",
    "origin_allowed",
    "preflight",
]

API_PREFIX = "/api/v1/"
CORS_ALLOW_HEADERS = "Authorization, X-API-Key, Content-Type, Last-Event-ID"


def error_response(error: GatewayError) -> web.Response:
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    return web.json_response(error.frame(), status=error.status, headers=headers)


def _hostname(host: str) -> str:
    """``example.com:8080`` -> ``example.com``; ``[::1]:8080`` -> ``::1``."""
    return urlsplit(f"//{host}").hostname or ""


def host_allowed(settings: ServerSettings, request: web.Request) -> bool:
    return bool(settings.api_keys) or _loopback_name(request)


def _normal(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def listed_origin(settings: ServerSettings, origin: str) -> bool:
    return _normal(origin) in {_normal(o) for o in settings.allowed_origins}


def origin_allowed(settings: ServerSettings, request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if listed_origin(settings, origin):
        return True
    parts = urlsplit(_normal(origin))
    return parts.scheme in ("http", "https") and parts.netloc == request.host.lower()


def _loopback_name(request: web.Request) -> bool:
    name = _hostname(request.host)
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def admin_guard(settings: Settings, handler: Handler) -> Handler:
    """An admin route: the Origin check, and, with no ``admin_token`` (loopback trust), a
    loopback ``Host`` (a web page that rebinds its DNS name to 127.0.0.1 is refused), then
    the token (bare 401)."""
    protected = protect(settings, "admin", handler)

    async def guarded(request: web.Request) -> web.StreamResponse:
        if not origin_allowed(settings.server, request) or (
            settings.server.admin_token is None and not _loopback_name(request)
        ):
            raise web.HTTPForbidden()
        return await protected(request)

    return guarded


def guard(gateway: Gateway, handler: Handler) -> Handler:
    """Wrap a client route's handler with the checks above; the caller lands in
    ``request[CALLER]`` (and its name in ``request[API_KEY_NAME]``)."""
    settings = gateway.runtime.settings

    async def guarded(request: web.Request) -> web.StreamResponse:
        if not host_allowed(settings.server, request) or not origin_allowed(
            settings.server, request
        ):
            raise web.HTTPForbidden()
        throttle.check(request)
        name = api_key_name(settings, request)
        if name is None and settings.server.admin_token is not None and is_admin(settings, request):
            name = ADMIN
        if name is None:
            note_refusal(settings, request, admin=False)
            throttle.failed(request)
        limited = gateway.requests.take(name)
        if limited is not None:
            return error_response(limited)
        request[CALLER] = Caller(name, admin=is_admin(settings, request))
        request[API_KEY_NAME] = name
        return await handler(request)

    return guarded


async def cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: an API response to an allow-listed Origin names it exactly
    (never ``*``); every other Origin gets no CORS header, so browsers keep the answer
    from the page."""
    origin = request.headers.get("Origin")
    if not request.path.startswith(API_PREFIX) or origin is None:
        return
    if listed_origin(request.app[GATEWAY_KEY].settings, origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "X-Session-Id, Retry-After"
        response.headers.add("Vary", "Origin")


async def preflight(request: web.Request) -> web.StreamResponse:
    """``OPTIONS /api/v1/...``: allowed for the listed origins only."""
    origin = request.headers.get("Origin")
    if origin is None or not listed_origin(request.app[GATEWAY_KEY].settings, origin):
        raise web.HTTPForbidden()
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
            "Access-Control-Max-Age": "600",
        },
    )
