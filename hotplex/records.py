"""Registration records: what the ``hotplex_register_*`` hooks return.

Every record is a frozen dataclass. Names are unique per kind across all plugins (a
duplicate is a start-up error naming both plugins). Factories are called later, at start-up,
with a :class:`~hotplex.context.PluginContext`. docs/plugins.md documents every field.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

if TYPE_CHECKING:
    import click
    from aiohttp import web
    from sqlalchemy import Connection

    from hotplex.context import PluginContext
    from hotplex.interfaces import ChatAdapter, HookSink, Middleware, Provider, Storage

__all__ = [
    "AgentToolSpec",
    "ChatAdapterSpec",
    "ChatCommandSpec",
    "CheckResult",
    "CommandSpec",
    "ConfigSection",
    "DoctorCheck",
    "MiddlewareSpec",
    "Migration",
    "OutboxSpec",
    "PluginManifest",
    "ProviderSpec",
    "Requirement",
    "ResourceSpec",
    "RouteSpec",
    "ShutdownSpec",
    "SinkSpec",
    "StorageSpec",
    "TemplateSpec",
    "ToolCallContext",
]


@dataclass(frozen=True, slots=True)
class Requirement:
    """An importable module a plugin needs at start-up, and how to install it.

    ``install_hint`` is the command a user runs, best an extra of the plugin's distribution
    (HotPlex's own plugins say ``pip install 'hotplex[slack]'``); ``hotplex plugins`` and
    ``hotplex doctor`` show it when the module is missing.
    """

    module: str
    install_hint: str


@dataclass(frozen=True, slots=True)
class PluginManifest:
    """Optional module attribute ``manifest`` of a plugin module.

    ``requires`` are checked with ``importlib.util.find_spec`` (nothing is imported), so
    ``hotplex plugins`` can list a plugin as unavailable with its install hint.
    """

    name: str
    description: str = ""
    requires: tuple[Requirement, ...] = ()


@dataclass(frozen=True, slots=True)
class ConfigSection:
    """A plugin's config section ``plugins.<name>``, validated by ``model``.

    ``model`` should forbid unknown keys and be frozen (subclass
    :class:`hotplex.config.PluginSettings`). A section with an ``enabled`` key is on when it
    says so; one without is on when the config file sets any of its keys.
    """

    name: str
    model: type[BaseModel]
    description: str = ""


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """An agent provider (``provider.type`` selects it by ``name``).

    ``factory(ctx)`` returns the :class:`~hotplex.interfaces.Provider`; ``binary`` is the
    default executable name that ``hotplex doctor`` looks for.
    """

    name: str
    factory: Callable[[PluginContext], Provider]
    description: str = ""
    binary: str | None = None


@dataclass(frozen=True, slots=True)
class ChatAdapterSpec:
    """A chat platform. ``factory(ctx, config)`` gets the validated section ``plugins.<name>``
    and returns a :class:`~hotplex.interfaces.ChatAdapter`; it runs only when enabled."""

    name: str
    factory: Callable[[PluginContext, BaseModel], ChatAdapter]
    description: str = ""


@dataclass(frozen=True, slots=True)
class StorageSpec:
    """A storage backend for the URL schemes in ``schemes`` (``sqlite+aiosqlite``, ...).

    A plugin whose hookimpl is not ``trylast`` replaces the built-in backend for a scheme.
    """

    name: str
    schemes: tuple[str, ...]
    factory: Callable[[PluginContext, str], Storage]


@dataclass(frozen=True, slots=True)
class SinkSpec:
    """A consumer of AgentEvents and AuditEvents, run off the hot path on its own bounded
    queue. ``on_overflow="block"`` applies back-pressure (storage); ``"drop"`` drops and
    counts (metrics)."""

    name: str
    factory: Callable[[PluginContext], HookSink]
    on_overflow: Literal["block", "drop"] = "drop"
    queue_size: int = 1000


@dataclass(frozen=True, slots=True)
class OutboxSpec:
    """A plugin's consumers of the durable outbox (:mod:`hotplex.outbox`).
    ``consumers(ctx)`` returns consumer name -> the event and audit types it wants
    (``fnmatch`` patterns such as ``"*"`` or ``"cron.*"``); the storage sink writes a row
    per wanted item and consumer in the transaction that stores the item."""

    name: str
    consumers: Callable[[PluginContext], Mapping[str, Collection[str]]]


@dataclass(frozen=True, slots=True)
class MiddlewareSpec:
    """An inbound middleware. Chains run by ascending ``order`` (core: dedup 100, access
    200, WAF 300, busy 400)."""

    name: str
    factory: Callable[[PluginContext], Middleware]
    order: int = 500


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """An aiohttp route on the gateway's port. ``auth`` is ``"api_key"``, ``"admin"`` or
    ``"none"`` (the handler checks signatures itself, e.g. Slack callbacks)."""

    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    name: str = ""
    auth: Literal["api_key", "admin", "none"] = "api_key"


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """A click command added to the ``hotplex`` CLI."""

    command: click.Command


@dataclass(frozen=True, slots=True)
class ChatCommandSpec:
    """A chat command (``/name args`` in a chat, ``/hotplex name args`` on Slack).

    ``handler(args, ctx)`` returns the reply text. ``ctx`` carries the conversation address,
    the user and the services (see docs/plugins.md). A ``privileged`` command runs only for
    the identities in ``security.owners``; anyone else gets a refusal.
    """

    name: str
    help: str
    handler: Callable[[str, Any], Awaitable[str | None]]
    privileged: bool = False


@dataclass(frozen=True, slots=True)
class ToolCallContext:
    """Given to an agent tool's handler: which session and conversation called it."""

    session_id: str
    address: str | None
    plugin_context: PluginContext


@dataclass(frozen=True, slots=True)
class AgentToolSpec:
    """A tool the agent can call on the ``hotplex`` MCP server. ``input_schema`` is a JSON
    Schema object; ``handler(args, ctx)`` returns the text (or JSON-able value) the agent
    sees. Every call goes through approvals first.

    ``timeout`` (seconds) replaces the bridge's default per-call limit for this tool.
    ``platforms`` limits the tool to sessions whose conversation address is on one of
    those platforms (``("slack", "feishu")``): other sessions are not offered it and a
    call from one is refused; None offers it to every session.
    """

    name: str
    description: str
    input_schema: Mapping[str, Any]
    handler: Callable[[dict[str, Any], ToolCallContext], Awaitable[Any]]
    timeout: float | None = None
    platforms: tuple[str, ...] | None = None

    def offered_to(self, address: str | None) -> bool:
        """Whether a session with this conversation ``address`` may see and call the tool
        (a session without an address has no platform: only unscoped tools)."""
        if self.platforms is None:
            return True
        return address is not None and address.partition(":")[0] in self.platforms


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    """A folder of jinja2 templates, read through importlib.resources from ``package``
    (``package/subdir``); templates are addressed as ``<name>/<file>``."""

    name: str
    package: str
    subdir: str = ""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One ``hotplex doctor`` line. ``hint`` tells how to fix a failure."""

    ok: bool
    detail: str
    hint: str | None = None
    warning: bool = False


@dataclass(frozen=True, slots=True)
class DoctorCheck:
    """A named check run by ``hotplex doctor``; ``run(ctx)`` returns a CheckResult (or an
    awaitable of one) and should finish within a few seconds."""

    name: str
    run: Callable[[PluginContext], CheckResult | Awaitable[CheckResult]]


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    """A long-lived resource: ``factory(ctx)`` returns an async context manager entered at
    start-up (in registration order) and exited at shutdown (in reverse)."""

    name: str
    factory: Callable[[PluginContext], AbstractAsyncContextManager[Any]]


@dataclass(frozen=True, slots=True)
class ShutdownSpec:
    """``callback(ctx)`` is awaited when shutdown begins, before resources are closed."""

    name: str
    callback: Callable[[PluginContext], Awaitable[None]]
    timeout: float = field(default=5.0)


_COMPONENT = re.compile(r"[a-z][a-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema change of a plugin's (or core's) tables, returned by the
    ``hotplex_register_migrations`` hook and applied by storage when it opens.
    ``upgrade(conn)`` runs inside the transaction that records it in
    ``hotplex_migrations``: either both happen or neither does.

    ``component`` names who owns the tables (``core``, or the plugin's name); ``version``
    counts from 1 per component. A database applies each (component, version) once, core's
    first, then the plugins' in (component, version) order. ``upgrade`` gets a synchronous
    :class:`sqlalchemy.Connection` and must not commit.
    """

    component: str
    version: int
    description: str
    upgrade: Callable[[Connection], None]

    def __post_init__(self) -> None:
        if not _COMPONENT.fullmatch(self.component):
            raise ValueError(
                f"migration component {self.component!r} must be lowercase letters, digits "
                "and _.- (starting with a letter)"
            )
        if isinstance(self.version, bool) or not isinstance(self.version, int):
            raise ValueError(f"migration version must be an int, not {self.version!r}")
        if self.version < 1:
            raise ValueError(f"migration version must be >= 1, not {self.version}")

    @property
    def id(self) -> tuple[str, int]:
        return (self.component, self.version)

    def __str__(self) -> str:
        return f"{self.component} v{self.version} ({self.description})"
