"""The JSON endpoints of the HTTP API: interrupt a session, answer a permission request.

``POST /api/v1/sessions/{id}/interrupt`` and ``POST /api/v1/permissions/{permission_id}``
answer JSON; errors are error frames with 400, 403 (not yours), 404 (unknown), 409
(already decided), 413, 429 or 503. ``POST /api/v1/execute`` (SSE) is in ``sse.py``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hotplex.gateway.clients import CALLER, GATEWAY_KEY
from hotplex.gateway.frames import SESSION_ID, DecisionRequest, GatewayError, parse_object
from hotplex.gateway.security import error_response

__all__ = ["interrupt", "permission", "read_body"]


async def read_body(request: web.Request, limit: int) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``); 413 beyond ``limit`` bytes."""
    too_large = GatewayError(
        "payload_too_large", f"The request body is larger than {limit} bytes.", status=413
    )
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None
    if len(raw) > limit:
        raise too_large
    return parse_object(raw) if raw.strip() else {}


async def interrupt(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    ref = request.match_info["session_id"]
    try:
        if not SESSION_ID.fullmatch(ref):
            raise GatewayError("unknown_session", "No such session.", status=404)
        _, interrupted = await gateway.interrupt(request[CALLER], ref)
    except GatewayError as error:
        return error_response(error)
    return web.json_response({"session_id": ref, "interrupted": interrupted})


async def permission(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    permission_id = request.match_info["permission_id"]
    try:
        body = await read_body(request, gateway.settings.max_body_bytes)
        decision = await gateway.decide(request[CALLER], permission_id, DecisionRequest.parse(body))
    except GatewayError as error:
        return error_response(error)
    answer: dict[str, Any] = {
        "permission_id": permission_id,
        "decision": decision.decision,
        "scope": decision.scope,
        "by": decision.by,
    }
    if decision.reason:
        answer["reason"] = decision.reason
    return web.json_response(answer)
