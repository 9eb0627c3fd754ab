"""Entry point ``relay``: bots that hand work to each other (docs/relay.md).

Registers the ``plugins.relay`` config section, the ``relay`` chat adapter (the receiving
side: ``/relay/v1/ask`` runs a peer's prompt through core's chat bridge), the start-up
resource that holds the peers, the bindings' table, the chat command ``/relay``, the agent
tool ``relay``, the CLI group ``hotplex relay`` and the admin routes
``/admin/v1/relay/...``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, model_validator

from hotplex import hookimpl
from hotplex.config import Duration, PluginSettings, UnattendedPolicy
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
)

manifest = PluginManifest(name="relay", description="Bot-to-bot relay between HotPlex instances")


class RelayRateLimit(PluginSettings):
    rate: float = Field(1.0, gt=0, description="Requests a second, on average, each way.")
    burst: int = Field(5, ge=1, description="Requests at once before the rate applies.")


class RelayPeer(PluginSettings):
    name: str = Field(description="The peer's name in bindings and messages.")
    url: str = Field(description="The peer's relay endpoint, e.g. https://peer/relay/v1.")
    secret: SecretStr = Field(description="Shared HMAC secret (use ${VAR}).")
    policy: UnattendedPolicy = Field("deny", description="Tool approvals for relayed turns.")
    rate_limit: RelayRateLimit = Field(
        default_factory=RelayRateLimit,
        description="Requests to and from this peer (a token bucket per direction).",
    )


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


@hookimpl
def hotplex_add_config() -> ConfigSection:
    return ConfigSection(name="relay", model=RelaySettings, description=manifest.description)


@hookimpl
def hotplex_register_chat_adapters() -> list[ChatAdapterSpec]:
    from hotplex_relay.server import make_adapter

    return [ChatAdapterSpec("relay", make_adapter, "Prompts from relay peers")]


@hookimpl
def hotplex_startup() -> list[ResourceSpec]:
    from hotplex_relay.service import relay_resource

    return [ResourceSpec("relay", relay_resource)]


@hookimpl
def hotplex_register_migrations() -> list[Migration]:
    from hotplex_relay.bindings import MIGRATIONS

    return list(MIGRATIONS)


@hookimpl
def hotplex_register_middleware() -> list[MiddlewareSpec]:
    from hotplex_relay.mirror import make_mirror_middleware

    return [MiddlewareSpec("relay-mirror", make_mirror_middleware, order=450)]


@hookimpl
def hotplex_register_sinks() -> list[SinkSpec]:
    from hotplex_relay.mirror import make_mirror_sink

    return [SinkSpec("relay-mirror", make_mirror_sink, on_overflow="drop", queue_size=1000)]


@hookimpl
def hotplex_register_commands() -> list[Any]:
    from hotplex_relay.cli import relay_group
    from hotplex_relay.service import relay_command

    return [
        CommandSpec(relay_group),
        ChatCommandSpec("relay", "ask another bot: /relay <peer> <prompt>", relay_command),
    ]


@hookimpl
def hotplex_register_agent_tools() -> list[AgentToolSpec]:
    from hotplex_relay.service import relay_tool

    return [relay_tool()]


@hookimpl
def hotplex_register_routes() -> list[RouteSpec]:
    from hotplex_relay.admin import admin_routes

    return admin_routes()
