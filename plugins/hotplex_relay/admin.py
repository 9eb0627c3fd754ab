"""``/admin/v1/relay/...`` (admin token): the bindings and the peers' health.

- ``GET /admin/v1/relay/bindings``: ``{"bindings": [{"left", "right", "created_by",
  "created_at"}]}``.
- ``POST /admin/v1/relay/bindings`` with ``{"a": <address>, "b": <address>}``: binds them
  (again: no change); answers the binding.
- ``DELETE /admin/v1/relay/bindings?a=<address>&b=<address>``: ``{"removed": true|false}``.
- ``GET /admin/v1/relay/peers``: ``{"name", "hop_limit", "peers": [{"name", "url",
  "policy", "breaker": {"state", "consecutive_failures", "last_error", "last_success"}}]}``.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from hotplex import UserFacingError

__all__ = ["add_binding", "list_bindings", "peers", "remove_binding"]


def _service(request: web.Request) -> Any:
    from hotplex.gateway import RUNTIME_KEY
    from hotplex_relay.service import RELAY

    service = request.app[RUNTIME_KEY].ctx.services.find(RELAY)
    if service is None:
        raise web.HTTPServiceUnavailable(
            text=json.dumps({"error": "the relay is not running"}), content_type="application/json"
        )
    return service


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


async def list_bindings(request: web.Request) -> web.Response:
    service = _service(request)
    return web.json_response({"bindings": [b.to_json() for b in service.bindings.all()]})


async def add_binding(request: web.Request) -> web.Response:
    service = _service(request)
    try:
        body = await request.json()
    except ValueError:
        return _bad('the body must be JSON: {"a": <address>, "b": <address>}')
    a, b = (body.get(k) if isinstance(body, dict) else None for k in ("a", "b"))
    if not isinstance(a, str) or not isinstance(b, str):
        return _bad("a and b must be conversation addresses")
    try:
        peers = [p.name for p in service.settings.peers]
        binding = await service.bindings.bind(a, b, by="admin", peers=peers)
    except UserFacingError as exc:
        return _bad(str(exc))
    return web.json_response(binding.to_json())


async def remove_binding(request: web.Request) -> web.Response:
    service = _service(request)
    a, b = request.query.get("a"), request.query.get("b")
    if not a or not b:
        return _bad("give both addresses: ?a=<address>&b=<address>")
    try:
        removed = await service.bindings.unbind(a, b)
    except UserFacingError as exc:
        return _bad(str(exc))
    return web.json_response({"removed": removed})


def _policy(policy: Any) -> Any:
    return policy if isinstance(policy, str) else policy.model_dump(mode="json")


async def peers(request: web.Request) -> web.Response:
    service = _service(request)
    settings = service.settings
    return web.json_response(
        {
            "name": settings.name,
            "hop_limit": settings.hop_limit,
            "peers": [
                {
                    "name": p.name,
                    "url": p.url,
                    "policy": _policy(p.policy),
                    "breaker": service.client.breakers[p.name].health(),
                }
                for p in settings.peers
            ],
        }
    )
