"""Entry point ``relay``: registers the ``plugins.relay`` config section."""

from __future__ import annotations

from pydantic import Field, SecretStr

from hotplex import hookimpl
from hotplex.config import PluginSettings, UnattendedPolicy
from hotplex.records import ConfigSection, PluginManifest

manifest = PluginManifest(name="relay", description="Bot-to-bot relay between HotPlex instances")


class RelayPeer(PluginSettings):
    name: str = Field(description="The peer's name in bindings and messages.")
    url: str = Field(description="The peer's relay endpoint, e.g. https://peer/relay/v1.")
    secret: SecretStr = Field(description="Shared HMAC secret (use ${VAR}).")
    policy: UnattendedPolicy = Field("deny", description="Tool approvals for relayed turns.")


class RelaySettings(PluginSettings):
    peers: tuple[RelayPeer, ...] = Field((), description="Bots this instance relays with.")
    hop_limit: int = Field(3, ge=1, le=16, description="Relay hops before a message is dropped.")


@hookimpl
def hotplex_add_config() -> ConfigSection:
    return ConfigSection(name="relay", model=RelaySettings, description=manifest.description)
