"""Entry point ``relay``: bots that hand work to each other (docs/relay.md).

Registers the ``plugins.relay`` config section, the ``relay`` chat adapter (the receiving
side: ``/relay/v1/ask`` runs a peer's prompt through core's chat bridge), the start-up
resource that holds the peers, the bindings' table, the chat command ``/relay``, the agent
tool ``relay``, the CLI group ``hotplex relay`` and the admin routes
``/admin/v1/relay/...``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from hotplex import hookimpl
from hotplex.config import Duration, PluginSettings, UnattendedPolicy
from hotplex.context import PluginContext
from hotplex.interfaces import ChatAdapter, HookSink, Middleware
from hotplex.records import (
    AgentToolSpec,
    ChatAdapterSpec,
    ChatCommandSpec,
    CommandSpec,
    ConfigSection,
    MiddlewareSpec,
    Migration,
    PluginManifest,
    ResourceSpec,
    RouteSpec,
    SinkSpec,
    ToolCallContext,
)

if TYPE_CHECKING:
    from aiohttp import web
    from sqlalchemy import Connection

#: The shortest peer secret accepted (as for API keys): a short secret is a guessable one.
_MIN_SECRET = 16

manifest = PluginManifest(name="relay", description="Bot-to-bot relay between HotPlex instances")


class RelayRateLimit(PluginSettings):
    rate: float = Field(1.0, gt=0, description="Requests a second, on average, each way.")
    burst: int = Field(5, ge=1, description="Requests at once before the rate applies.")


class RelayPeer(PluginSettings):
    name: str = Field(description="The peer's name in bindings and messages.")
    url: str = Field(description="The peer's relay endpoint, e.g. https://peer/relay/v1.")
    secret: SecretStr = Field(
        description="Shared HMAC secret, at least 16 characters (use ${VAR})."
    )
    policy: UnattendedPolicy = Field("deny", description="Tool approvals for relayed turns.")
    rate_limit: RelayRateLimit = Field(
        default_factory=RelayRateLimit,
        description="Requests to and from this peer (a token bucket per direction).",
    )

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr) -> SecretStr:
        if len(secret.get_secret_value()) < _MIN_SECRET:
            raise ValueError(
                f"too short ({len(secret.get_secret_value())} characters): use at least "
                f"{_MIN_SECRET}, e.g. from `python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'`"
            )
        return secret


class RelaySettings(PluginSettings):
    name: str = Field(
        "",
        description="This instance's name as its peers know it (signed into every request); "
        "required with peers.",
    )
    peers: tuple[RelayPeer, ...] = Field((), description="Bots this instance relays with.")
    hop_limit: int = Field(3, ge=1, le=16, description="Relay hops before a message is dropped.")
    connect_timeout: Duration = Field(5.0, gt=0, description="Connecting to a peer.")
    idle_timeout: Duration = Field(
        60.0, gt=0, description="Silence on a peer's answer stream before it counts as lost."
    )
    timeout: Duration = Field(600.0, gt=0, description="A whole relayed answer.")
    heartbeat: Duration = Field(
        10.0, gt=0, description="A line on a quiet answer stream (below peers' idle_timeout)."
    )
    replay_window: Duration = Field(
        300.0, gt=0, description="How old (or new) a request's timestamp may be."
    )
    breaker_failures: int = Field(
        5, ge=1, description="Failed requests in a row that open a peer's circuit breaker."
    )
    breaker_reset: Duration = Field(
        30.0, gt=0, description="Seconds an open breaker waits before one trial request."
    )

    @model_validator(mode="after")
    def _named(self) -> RelaySettings:
        names = [peer.name for peer in self.peers]
        if len(set(names)) != len(names):
            raise ValueError("peers: each peer needs its own name")
        if self.peers and not self.name:
            raise ValueError("name: set this instance's relay name (peers sign with it)")
        if self.name in names:
            raise ValueError(f"name: {self.name!r} is also a peer's name")
        return self

    def peer(self, name: str) -> RelayPeer | None:
        return next((peer for peer in self.peers if peer.name == name), None)


# -- the hooks: records whose callables import the heavy parts (aiohttp, SQLAlchemy) only
# when they run, so listing the plugins (and ``hotplex --help``) stays light


def _make_adapter(ctx: PluginContext, config: BaseModel) -> ChatAdapter:
    from hotplex_relay.server import make_adapter

    return make_adapter(ctx, config)


def _resource(ctx: PluginContext) -> AbstractAsyncContextManager[Any]:
    from hotplex_relay.service import relay_resource

    return relay_resource(ctx)


def _bindings_v1(conn: Connection) -> None:
    from hotplex_relay.bindings import create_v1

    create_v1(conn)


def _mirror_middleware(ctx: PluginContext) -> Middleware:
    from hotplex_relay.mirror import MirrorMiddleware

    return MirrorMiddleware(ctx)


def _mirror_sink(ctx: PluginContext) -> HookSink:
    from hotplex_relay.mirror import MirrorSink

    return MirrorSink(ctx)


async def _relay_command(args: str, ctx: Any) -> str | None:
    from hotplex_relay.service import relay_command

    return await relay_command(args, ctx)


async def _relay_tool(args: dict[str, Any], ctx: ToolCallContext) -> Any:
    from hotplex_relay.service import relay_tool_call

    return await relay_tool_call(args, ctx)


def _route(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        from hotplex_relay import admin

        route: Callable[[web.Request], Awaitable[web.StreamResponse]] = getattr(admin, name)
        return await route(request)

    return handler


_TOOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "peer": {"type": "string", "description": "The other bot's relay name."},
        "prompt": {"type": "string", "description": "What to ask it, self-contained."},
    },
    "required": ["peer", "prompt"],
    "additionalProperties": False,
}


@hookimpl
def hotplex_add_config() -> ConfigSection:
    return ConfigSection(name="relay", model=RelaySettings, description=manifest.description)


@hookimpl
def hotplex_register_chat_adapters() -> list[ChatAdapterSpec]:
    return [ChatAdapterSpec("relay", _make_adapter, "Prompts from relay peers")]


@hookimpl
def hotplex_startup() -> list[ResourceSpec]:
    return [ResourceSpec("relay", _resource)]


@hookimpl
def hotplex_register_migrations() -> list[Migration]:
    return [Migration("relay", 1, "relay_bindings", _bindings_v1)]


@hookimpl
def hotplex_register_middleware() -> list[MiddlewareSpec]:
    return [MiddlewareSpec("relay-mirror", _mirror_middleware, order=450)]


@hookimpl
def hotplex_register_sinks() -> list[SinkSpec]:
    return [SinkSpec("relay-mirror", _mirror_sink, on_overflow="drop", queue_size=1000)]


@hookimpl
def hotplex_register_commands() -> list[CommandSpec | ChatCommandSpec]:
    from hotplex_relay.cli import relay_group

    return [
        CommandSpec(relay_group),
        ChatCommandSpec("relay", "ask another bot: /relay <peer> <prompt>", _relay_command),
    ]


@hookimpl
def hotplex_register_agent_tools() -> list[AgentToolSpec]:
    return [
        AgentToolSpec(
            "relay",
            "Ask another bot (a HotPlex relay peer) to do something and get its answer. "
            "peer: its name; prompt: the full request. Its answer says when it is incomplete "
            "or when its tools were refused.",
            _TOOL_SCHEMA,
            _relay_tool,
            timeout=900.0,
        )
    ]


@hookimpl
def hotplex_register_routes() -> list[RouteSpec]:
    base = "/admin/v1/relay"
    return [
        RouteSpec("GET", f"{base}/bindings", _route("list_bindings"), auth="admin"),
        RouteSpec("POST", f"{base}/bindings", _route("add_binding"), auth="admin"),
        RouteSpec("DELETE", f"{base}/bindings", _route("remove_binding"), auth="admin"),
        RouteSpec("GET", f"{base}/peers", _route("peers"), auth="admin"),
    ]
