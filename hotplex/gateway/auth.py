"""Authentication of gateway requests: API keys and the admin token.

Keys are compared in constant time; a failure is a bare 401 without detail, counted
against the client's address (``throttle.py``: too many and it gets 429 first). A key comes as
``Authorization: Bearer <key>``, ``X-API-Key: <key>``, HTTP Basic with the key as the
password (how OpenCode clients send their server password), or, on a WebSocket handshake only,
as the subprotocol ``hotplex-key.<key>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from hotplex.config import Settings
from hotplex.gateway import throttle

__all__ = [
    "API_KEY_NAME",
    "FORWARDING_HEADERS",
    "WS_KEY_PREFIX",
    "api_key_name",
    "forwarded_by",
    "is_admin",
    "is_loopback",
    "note_refusal",
    "protect",
]

log = logging.getLogger(__name__)

#: The name of the API key that authenticated the request.
API_KEY_NAME = web.RequestKey("api_key_name", str)

#: A WebSocket client may offer its key as the subprotocol ``hotplex-key.<key>``.
WS_KEY_PREFIX = "hotplex-key."

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


#: Headers a reverse proxy adds: a request carrying one came from further away.
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def forwarded_by(request: web.Request) -> str | None:
    """The first forwarding header the request carries, if any."""
    return next((h for h in FORWARDING_HEADERS if h in request.headers), None)


def _from_loopback(request: web.Request) -> bool:
    remote = request.remote
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def is_loopback(request: web.Request) -> bool:
    """A request from this machine that no reverse proxy relayed: loopback trust (no keys,
    no admin token) never extends to a proxied request, whose true client is elsewhere."""
    return _from_loopback(request) and forwarded_by(request) is None


def note_refusal(settings: Settings, request: web.Request, *, admin: bool) -> None:
    """Before a 401: say in the log when loopback trust was refused to a proxied request
    (the operator put a reverse proxy in front without keys)."""
    trusting = settings.server.admin_token is None if admin else not settings.server.api_keys
    header = forwarded_by(request)
    if trusting and header is not None and _from_loopback(request):
        log.warning(
            "refused loopback trust to a request relayed by a proxy (%s header): behind a "
            "reverse proxy, set server.api_keys and server.admin_token",
            header,
        )


def _presented(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    if auth.lower().startswith("basic "):  # OpenCode clients send their password this way
        return _basic_password(auth[6:].strip())
    key = request.headers.get("X-API-Key")
    if key is not None or request.headers.get("Upgrade", "").lower() != "websocket":
        return key
    # browsers cannot set headers on a WebSocket: they offer the key as a subprotocol
    for protocol in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        protocol = protocol.strip()
        if protocol.startswith(WS_KEY_PREFIX):
            return protocol[len(WS_KEY_PREFIX) :]
    return None


def _basic_password(token: str) -> str | None:
    """The password of HTTP Basic credentials (the user name is not checked)."""
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8", "surrogateescape")
    except (binascii.Error, ValueError):
        return None
    _, colon, password = decoded.partition(":")
    return password if colon else None


def _same(secret: str, presented: str) -> bool:
    """Constant-time equality that does not leak the secret's length either."""
    given = presented.encode("utf-8", "surrogateescape")  # headers may hold any bytes
    return hmac.compare_digest(
        hashlib.sha256(secret.encode()).digest(), hashlib.sha256(given).digest()
    )


def api_key_name(settings: Settings, request: web.Request) -> str | None:
    """The name of the API key the request presents; ``local`` when no keys are configured
    and the request comes from loopback; None otherwise."""
    keys = settings.server.api_keys
    if not keys:
        return "local" if is_loopback(request) else None
    presented = _presented(request)
    if presented is None:
        return None
    found = None
    for key in keys:  # no early exit: the time taken does not depend on which key matched
        if _same(key.key.get_secret_value(), presented):
            found = key.name
    return found


def is_admin(settings: Settings, request: web.Request) -> bool:
    token = settings.server.admin_token
    if token is None:
        return is_loopback(request)
    presented = _presented(request)
    return presented is not None and _same(token.get_secret_value(), presented)


def protect(settings: Settings, auth: str, handler: Handler) -> Handler:
    """Wrap ``handler`` so it runs only for an authenticated request (failures throttled)."""
    if auth == "none":
        return handler

    async def guarded(request: web.Request) -> web.StreamResponse:
        throttle.check(request)
        if auth == "admin":
            allowed = is_admin(settings, request)
        else:
            name = api_key_name(settings, request)
            allowed = name is not None
            if name is not None:
                request[API_KEY_NAME] = name
        if not allowed:
            note_refusal(settings, request, admin=auth == "admin")
            throttle.failed(request)
        return await handler(request)

    return guarded
