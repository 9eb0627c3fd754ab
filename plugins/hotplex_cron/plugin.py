"""Entry point ``cron``: scheduled agent tasks (docs/cron.md).

Registers the section ``plugins.cron``, the tables (a migration), the chat platform
``cron`` (each run is a message through core's chat bridge), the start-up resource that
runs the scheduler, ``hotplex cron ...``, ``/admin/v1/cron/...``, the chat command
``/cron``, the agent tool ``schedule`` and the template of what a run's targets read.

Imports no APScheduler: the scheduler is imported only when the plugin starts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from pydantic import BaseModel

from hotplex import hookimpl
from hotplex.context import PluginContext
from hotplex.errors import ConfigError
from hotplex.interfaces import ChatAdapter
from hotplex.records import (
    AgentToolSpec,
    ChatAdapterSpec,
    ChatCommandSpec,
    CommandSpec,
    ConfigSection,
    Migration,
    PluginManifest,
    Requirement,
    ResourceSpec,
    RouteSpec,
    TemplateSpec,
)
from hotplex.services import STORAGE
from hotplex_cron.keys import ROUTES
from hotplex_cron.settings import CronJob, CronSettings

__all__ = ["CronJob", "CronSettings", "manifest"]

manifest = PluginManifest(
    name="cron",
    description="Scheduled agent tasks",
    requires=(Requirement("apscheduler", "pip install 'hotplex[cron]'"),),
)


@asynccontextmanager
async def run_cron(ctx: PluginContext) -> AsyncIterator[None]:
    """Start the cron service (``CRON``) once storage is open; stop it at shutdown."""
    from hotplex.storage.sql import SqlStorage
    from hotplex_cron.keys import CRON
    from hotplex_cron.service import CronService
    from hotplex_cron.store import CronStore

    storage = ctx.services.find(STORAGE)
    if not isinstance(storage, SqlStorage):
        raise ConfigError(
            "plugins.cron needs the SQL storage (storage.enabled: true): jobs, runs and the "
            "scheduler lease live there",
            path="plugins.cron",
        )
    settings = ctx.plugin_config("cron")
    assert isinstance(settings, CronSettings)
    service = CronService(ctx, settings, CronStore(storage))
    ctx.services.set(CRON, service)
    try:
        await service.start()
        yield
    finally:
        await service.stop()
        ctx.services.remove(CRON)


def make_adapter(ctx: PluginContext, config: BaseModel) -> ChatAdapter:
    from hotplex_cron.keys import CRON

    return ctx.services.get(CRON).adapter


@hookimpl
def hotplex_add_config() -> ConfigSection:
    return ConfigSection(name="cron", model=CronSettings, description=manifest.description)


def _tables_v1(conn: Any) -> None:
    from hotplex_cron.store import create_tables_v1  # SQLAlchemy only when storage opens

    create_tables_v1(conn)


@hookimpl
def hotplex_register_migrations() -> list[Migration]:
    return [Migration("cron", 1, "cron_jobs and cron_runs", _tables_v1)]


@hookimpl
def hotplex_startup() -> list[ResourceSpec]:
    return [ResourceSpec("cron", run_cron)]


@hookimpl
def hotplex_register_chat_adapters() -> list[ChatAdapterSpec]:
    return [ChatAdapterSpec("cron", make_adapter, "runs of scheduled jobs")]


@hookimpl
def hotplex_register_commands() -> list[CommandSpec | ChatCommandSpec]:
    from hotplex_cron.chat import command
    from hotplex_cron.cli import cron

    return [CommandSpec(cron), command()]


def _route(name: str) -> Callable[[Any], Awaitable[Any]]:
    async def handler(request: Any) -> Any:
        from hotplex_cron.routes import HANDLERS  # aiohttp only when the gateway runs

        return await HANDLERS[name](request)

    return handler


@hookimpl
def hotplex_register_routes() -> list[RouteSpec]:
    return [
        RouteSpec(method, path, _route(name), auth="admin")
        for name, (method, path) in ROUTES.items()
    ]


@hookimpl
def hotplex_register_agent_tools() -> list[AgentToolSpec]:
    from hotplex_cron.chat import schedule_tool

    return [schedule_tool()]


@hookimpl
def hotplex_register_templates() -> list[TemplateSpec]:
    return [TemplateSpec("cron", "hotplex_cron", "templates")]
