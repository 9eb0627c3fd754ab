"""``/admin/v1/webhooks/...`` (admin token): subscriptions with their health, dead letters,
redelivery and a test message (``hotplex webhook ...`` calls them, see :mod:`.cli`)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from hotplex.context import ServiceKey
from hotplex.gateway import RUNTIME_KEY
from hotplex_webhook.inbound import Inbound
from hotplex_webhook.outbound import Outbound

__all__ = ["ADMIN_HANDLERS", "PREFIX", "WEBHOOKS", "Webhooks"]

PREFIX = "/admin/v1/webhooks"


class Webhooks:
    """The plugin's running parts (service :data:`WEBHOOKS`)."""

    def __init__(self, outbound: Outbound | None, inbound: Inbound) -> None:
        self.outbound = outbound
        self.inbound = inbound


WEBHOOKS = ServiceKey("webhooks", Webhooks)

Handler = Callable[[web.Request, Webhooks], Awaitable[web.Response]]


def _with_webhooks(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def wrapped(request: web.Request) -> web.Response:
        hooks = request.app[RUNTIME_KEY].ctx.services.find(WEBHOOKS)
        if hooks is None:
            return web.json_response({"error": "the webhook plugin is not running"}, status=503)
        return await handler(request, hooks)

    return wrapped


def _outbound(hooks: Webhooks, name: str | None = None) -> Outbound:
    if hooks.outbound is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "no subscriptions are configured"}))
    if name is not None and name not in hooks.outbound.subscriptions:
        raise web.HTTPNotFound(
            text=json.dumps({"error": f"no subscription named {name!r}"}),
            content_type="application/json",
        )
    return hooks.outbound


async def list_webhooks(request: web.Request, hooks: Webhooks) -> web.Response:
    subs = await hooks.outbound.describe() if hooks.outbound is not None else []
    triggers = [
        {"name": t.name, "scheme": t.scheme, "deliver_to": t.deliver_to}
        for t in hooks.inbound.triggers.values()
    ]
    return web.json_response({"subscriptions": subs, "triggers": triggers})


async def dead_letters(request: web.Request, hooks: Webhooks) -> web.Response:
    name = request.query.get("subscription") or None
    outbound = _outbound(hooks, name)
    try:
        limit = min(1000, max(1, int(request.query.get("limit", "100"))))
    except ValueError:
        return web.json_response({"error": "limit must be a number"}, status=400)
    return web.json_response({"dead": await outbound.dead_letters(name, limit)})


async def redeliver(request: web.Request, hooks: Webhooks) -> web.Response:
    name = request.match_info["name"]
    outbound = _outbound(hooks, name)
    ids: list[int] | None = None
    if request.can_read_body:
        try:
            raw = await request.json()
        except ValueError:
            return web.json_response({"error": "the body is not JSON"}, status=400)
        if isinstance(raw, dict) and raw.get("ids") is not None:
            if not isinstance(raw["ids"], list) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in raw["ids"]
            ):
                return web.json_response({"error": "ids must be a list of numbers"}, status=400)
            ids = raw["ids"]
    count = await outbound.redeliver(name, ids)
    return web.json_response({"subscription": name, "redelivered": count})


async def send_test(request: web.Request, hooks: Webhooks) -> web.Response:
    name = request.match_info["name"]
    result = await _outbound(hooks, name).test(name)
    return web.json_response(
        {
            "subscription": name,
            "verdict": result.verdict,
            "status": result.status,
            "error": result.error or None,
        }
    )


#: (method, path, handler) of every admin route (the plugin registers them lazily).
ADMIN_HANDLERS: tuple[tuple[str, str, Callable[[web.Request], Awaitable[web.Response]]], ...] = (
    ("GET", PREFIX, _with_webhooks(list_webhooks)),
    ("GET", f"{PREFIX}/dead", _with_webhooks(dead_letters)),
    ("POST", f"{PREFIX}/{{name}}/redeliver", _with_webhooks(redeliver)),
    ("POST", f"{PREFIX}/{{name}}/test", _with_webhooks(send_test)),
)
