"""Entry point ``webhook``: signed events out of core's durable outbox, verified triggers in.

Registers the ``plugins.webhook`` section, an outbox consumer per subscription, the plugin's
migration (``webhook_disabled``), the start-up resource that runs the delivery workers and
the triggers, the routes ``POST /hooks/v1/{name}`` and ``/admin/v1/webhooks/...`` and the
CLI group ``hotplex webhook``. docs/webhooks.md describes it.

Nothing heavy is imported here (no aiohttp, no SQLAlchemy): the hooks run for every CLI
command; the parts that need them are imported when they run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from hotplex import hookimpl
from hotplex.context import PluginContext
from hotplex.errors import ConfigError
from hotplex.records import (
    CommandSpec,
    ConfigSection,
    Migration,
    OutboxSpec,
    PluginManifest,
    ResourceSpec,
    RouteSpec,
)
from hotplex_webhook.config import InboundTrigger, Subscription, WebhookSettings, consumer_name
from hotplex_webhook.store import MIGRATIONS

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["InboundTrigger", "Subscription", "WebhookSettings", "manifest"]

manifest = PluginManifest(name="webhook", description="Outbound webhooks and inbound triggers")

#: The admin routes (method, path), served by :mod:`hotplex_webhook.admin`.
ADMIN_ROUTES = (
    ("GET", "/admin/v1/webhooks"),
    ("GET", "/admin/v1/webhooks/dead"),
    ("POST", "/admin/v1/webhooks/{name}/redeliver"),
    ("POST", "/admin/v1/webhooks/{name}/test"),
)


def settings_of(ctx: PluginContext) -> WebhookSettings:
    section = ctx.settings.plugins.get("webhook")
    return section if isinstance(section, WebhookSettings) else WebhookSettings()


def consumers(ctx: PluginContext) -> Mapping[str, Collection[str]]:
    return {consumer_name(s.name): s.events for s in settings_of(ctx).subscriptions}


def check_urls(settings: WebhookSettings) -> None:
    """A literal private address is refused at start (names are checked at connect)."""
    from hotplex_webhook.guard import BlockedAddressError, check_host

    for index, sub in enumerate(settings.subscriptions):
        try:
            check_host(urlsplit(sub.url).hostname or "", allow_private=settings.allow_private_urls)
        except BlockedAddressError as exc:
            raise ConfigError(
                f"webhook subscription {sub.name}: {exc} (set allow_private_urls to allow it)",
                path=f"plugins.webhook.subscriptions.{index}.url",
            ) from None


@asynccontextmanager
async def run_webhooks(ctx: PluginContext) -> AsyncIterator[None]:
    """The delivery workers and the triggers, published as service ``WEBHOOKS``."""
    from hotplex.outbox import OUTBOX
    from hotplex.runtime import RUNTIME
    from hotplex.services import STORAGE
    from hotplex.storage.sql import SqlStorage
    from hotplex_webhook.admin import WEBHOOKS, Webhooks
    from hotplex_webhook.inbound import PLATFORM, Inbound
    from hotplex_webhook.outbound import Outbound

    settings = settings_of(ctx)
    check_urls(settings)
    async with AsyncExitStack() as stack:
        outbound: Outbound | None = None
        if settings.subscriptions:
            outbox = ctx.services.find(OUTBOX)
            storage = ctx.services.find(STORAGE)
            if outbox is None or not isinstance(storage, SqlStorage):
                raise ConfigError(
                    "webhook subscriptions need storage (storage.enabled with the SQL backend)",
                    path="plugins.webhook.subscriptions",
                )
            outbound = await stack.enter_async_context(
                Outbound(
                    settings.subscriptions,
                    outbox,
                    storage,
                    allow_private=settings.allow_private_urls,
                )
            )
        inbound = Inbound(
            ctx,
            {t.name: t for t in settings.inbound},
            replay_window=settings.replay_window,
            answer_within=settings.answer_within,
        )
        stack.push_async_callback(inbound.aclose)
        runtime = ctx.services.find(RUNTIME)
        if runtime is not None:  # stored, unfinished trigger messages run again at start-up
            runtime.replayers[PLATFORM] = inbound.replay
        ctx.services.set(WEBHOOKS, Webhooks(outbound, inbound))
        try:
            yield
        finally:
            ctx.services.remove(WEBHOOKS)


async def _trigger(request: web.Request) -> web.Response:
    from aiohttp import web

    from hotplex.gateway import RUNTIME_KEY
    from hotplex_webhook.admin import WEBHOOKS

    hooks = request.app[RUNTIME_KEY].ctx.services.find(WEBHOOKS)
    if hooks is None:
        return web.json_response({"error": "the webhook plugin is not running"}, status=503)
    return await hooks.inbound.handle(request)


def _admin(index: int) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        from hotplex_webhook.admin import ADMIN_HANDLERS

        return await ADMIN_HANDLERS[index][2](request)

    return handler


@hookimpl
def hotplex_add_config() -> ConfigSection:
    return ConfigSection(name="webhook", model=WebhookSettings, description=manifest.description)


@hookimpl
def hotplex_register_outbox() -> list[OutboxSpec]:
    return [OutboxSpec("webhook", consumers)]


@hookimpl
def hotplex_register_migrations() -> list[Migration]:
    return list(MIGRATIONS)


@hookimpl
def hotplex_startup() -> list[ResourceSpec]:
    return [ResourceSpec("webhook", run_webhooks)]


@hookimpl
def hotplex_register_routes() -> list[RouteSpec]:
    trigger = RouteSpec("POST", "/hooks/v1/{name}", _trigger, name="webhook-trigger", auth="none")
    admin = [
        RouteSpec(method, path, _admin(index), auth="admin")
        for index, (method, path) in enumerate(ADMIN_ROUTES)
    ]
    return [trigger, *admin]


@hookimpl
def hotplex_register_commands() -> list[CommandSpec]:
    from hotplex_webhook.cli import webhook_cli

    return [CommandSpec(webhook_cli)]
