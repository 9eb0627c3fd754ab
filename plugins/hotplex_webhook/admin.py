"""``/admin/v1/webhooks/...`` (admin token) and ``hotplex webhook list|test|redeliver|dead``,
which talks to the running daemon through those routes."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import click
from aiohttp import web

from hotplex.client import DaemonClient, DaemonError, connection_options
from hotplex.context import ServiceKey
from hotplex.gateway import RUNTIME_KEY
from hotplex.records import RouteSpec
from hotplex_webhook.inbound import Inbound
from hotplex_webhook.outbound import Outbound

__all__ = ["WEBHOOKS", "Webhooks", "admin_routes", "webhook_cli"]

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


def admin_routes() -> list[RouteSpec]:
    return [
        RouteSpec("GET", PREFIX, _with_webhooks(list_webhooks), auth="admin"),
        RouteSpec("GET", f"{PREFIX}/dead", _with_webhooks(dead_letters), auth="admin"),
        RouteSpec("POST", f"{PREFIX}/{{name}}/redeliver", _with_webhooks(redeliver), auth="admin"),
        RouteSpec("POST", f"{PREFIX}/{{name}}/test", _with_webhooks(send_test), auth="admin"),
    ]


# -- the CLI ---------------------------------------------------------------------------


def _call(
    ctx: click.Context, url: str | None, token: str | None, method: str, path: str, body: Any = None
) -> Any:
    client = DaemonClient.from_click(ctx, url, token)
    try:
        return client.request(method, path, body)
    except DaemonError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("webhook")
def webhook_cli() -> None:
    """Outbound webhook subscriptions: health, dead letters, redelivery."""


@webhook_cli.command("list")
@connection_options
@click.pass_context
def list_cmd(ctx: click.Context, url: str | None, token: str | None) -> None:
    """Subscriptions with their health, and the inbound triggers."""
    answer = _call(ctx, url, token, "GET", PREFIX)
    for sub in answer["subscriptions"]:
        state = f"disabled ({sub['disabled']})" if sub["disabled"] else "enabled"
        click.echo(
            f"{sub['name']}  {sub['url']}  {state}  pending={sub['pending']} "
            f"dead={sub['dead']} delivered={sub['delivered']} failed={sub['failed']}"
            + (f"  last error: {sub['last_error']}" if sub["last_error"] else "")
        )
    for trigger in answer["triggers"]:
        click.echo(
            f"trigger {trigger['name']}  scheme={trigger['scheme']}  -> {trigger['deliver_to']}"
        )


@webhook_cli.command("dead")
@click.argument("name", required=False)
@connection_options
@click.pass_context
def dead_cmd(ctx: click.Context, name: str | None, url: str | None, token: str | None) -> None:
    """Dead letters (of one subscription, or all)."""
    path = f"{PREFIX}/dead" + (f"?subscription={name}" if name else "")
    for row in _call(ctx, url, token, "GET", path)["dead"]:
        click.echo(
            f"{row['id']}  {row['subscription']}  {row['event_id']}  {row['type']}  "
            f"attempts={row['attempts']}  {row['last_error']}"
        )


@webhook_cli.command("redeliver")
@click.argument("name")
@click.argument("ids", nargs=-1, type=int)
@connection_options
@click.pass_context
def redeliver_cmd(
    ctx: click.Context, name: str, ids: tuple[int, ...], url: str | None, token: str | None
) -> None:
    """Send a subscription's dead letters again (all, or the given ids); enables it."""
    body = {"ids": list(ids)} if ids else {}
    answer = _call(ctx, url, token, "POST", f"{PREFIX}/{name}/redeliver", body)
    click.echo(f"{answer['redelivered']} deliveries of {name} are due again")


@webhook_cli.command("test")
@click.argument("name")
@connection_options
@click.pass_context
def test_cmd(ctx: click.Context, name: str, url: str | None, token: str | None) -> None:
    """Send a signed webhook.test message to a subscription now."""
    answer = _call(ctx, url, token, "POST", f"{PREFIX}/{name}/test")
    if answer["verdict"] != "delivered":
        raise click.ClickException(f"{name}: {answer['error']}")
    click.echo(f"{name}: delivered (HTTP {answer['status']})")
