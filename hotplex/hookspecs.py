"""Every hook a HotPlex plugin can implement.

Hooks are sync, called once at composition time (start-up or CLI start), and return records
(see :mod:`hotplex.records`) or lists of them; ``None`` means "nothing to add". Per message,
core awaits the objects those records produced and never calls hooks.

Implement a hook with the ``hookimpl`` marker::

    from hotplex import hookimpl
    from hotplex.records import ProviderSpec

    @hookimpl
    def hotplex_register_providers():
        return [ProviderSpec(name="my-agent", factory=make_provider)]

docs/hooks.md documents each hook with its exact arguments.
"""

from __future__ import annotations

from collections.abc import Sequence

import pluggy

from hotplex.records import (
    AgentToolSpec,
    ChatAdapterSpec,
    ChatCommandSpec,
    CommandSpec,
    ConfigSection,
    DoctorCheck,
    MiddlewareSpec,
    Migration,
    OutboxSpec,
    ProviderSpec,
    ResourceSpec,
    RouteSpec,
    ShutdownSpec,
    SinkSpec,
    StorageSpec,
    TemplateSpec,
)

PROJECT = "hotplex"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# -- configuration ---------------------------------------------------------------------


@hookspec
def hotplex_add_config() -> ConfigSection | Sequence[ConfigSection] | None:
    """Called before the config file is validated; return the plugin's config section(s).

    Each section validates ``plugins.<name>``; an unknown key in it is a config error.
    """


# -- composition: what the plugin provides ---------------------------------------------


@hookspec
def hotplex_register_providers() -> Sequence[ProviderSpec] | None:
    """Called at start-up; return agent providers, selected by ``provider.type``."""


@hookspec
def hotplex_register_chat_adapters() -> Sequence[ChatAdapterSpec] | None:
    """Called at start-up; return chat platform adapters, started when their section is
    enabled."""


@hookspec
def hotplex_register_storage() -> Sequence[StorageSpec] | None:
    """Called at start-up; return storage backends by URL scheme. The built-in SQLAlchemy
    backend is ``trylast``: a plugin registering the same scheme replaces it."""


@hookspec
def hotplex_register_migrations() -> Sequence[Migration] | None:
    """Called when storage is built; return the plugin's schema migrations (component: the
    plugin's name). Storage applies them at open, after core's, in version order, once."""


@hookspec
def hotplex_register_sinks() -> Sequence[SinkSpec] | None:
    """Called at start-up; return event sinks, each run on its own bounded queue."""


@hookspec
def hotplex_register_outbox() -> Sequence[OutboxSpec] | None:
    """Called at start-up; return consumers of the durable outbox: the storage sink writes
    the events and audit records each wants in the transaction that stores them."""


@hookspec
def hotplex_register_middleware() -> Sequence[MiddlewareSpec] | None:
    """Called at start-up; return inbound middlewares, chained by ``order``."""


@hookspec
def hotplex_register_routes() -> Sequence[RouteSpec] | None:
    """Called when the gateway app is built; return aiohttp routes on the gateway port."""


@hookspec
def hotplex_register_commands() -> Sequence[CommandSpec | ChatCommandSpec] | None:
    """Called when the CLI starts (click commands) and at start-up (chat commands)."""


@hookspec
def hotplex_register_agent_tools() -> Sequence[AgentToolSpec] | None:
    """Called at start-up; return tools the agent can call on the ``hotplex`` MCP server."""


@hookspec
def hotplex_register_templates() -> Sequence[TemplateSpec] | None:
    """Called when the template environment is built; return template folders."""


@hookspec
def hotplex_doctor_checks() -> Sequence[DoctorCheck] | None:
    """Called by ``hotplex doctor``; return the plugin's own checks."""


# -- lifecycle -------------------------------------------------------------------------


@hookspec
def hotplex_startup() -> Sequence[ResourceSpec] | None:
    """Called at start-up; return resources (async context managers) to enter, in order.
    They are exited in reverse order at shutdown, and only if they were entered."""


@hookspec
def hotplex_shutdown() -> Sequence[ShutdownSpec] | None:
    """Called at start-up; return callbacks awaited when shutdown begins, before resources
    close (flush a buffer, say goodbye to a peer)."""
