"""Entry point ``webhook``: registers the ``plugins.webhook`` config section."""

from __future__ import annotations

from pydantic import Field, SecretStr

from hotplex import hookimpl
from hotplex.config import PluginSettings, UnattendedPolicy
from hotplex.records import ConfigSection, PluginManifest

manifest = PluginManifest(name="webhook", description="Outbound webhooks and inbound triggers")


class Subscription(PluginSettings):
    url: str = Field(description="Receiver URL.")
    secret: SecretStr = Field(description="Signing secret (Standard Webhooks HMAC).")
    events: tuple[str, ...] = Field(("*",), description="Event and audit types, or '*'.")


class InboundTrigger(PluginSettings):
    name: str = Field(description="Served at /hooks/v1/<name>.")
    secret: SecretStr = Field(description="Verifies the sender's signature.")
    prompt: str = Field(description="Jinja2 template of the prompt; `payload` is the body.")
    deliver_to: str | None = Field(None, description="Conversation address for the result.")
    policy: UnattendedPolicy = Field("deny", description="Tool approvals for triggered turns.")


class WebhookSettings(PluginSettings):
    subscriptions: tuple[Subscription, ...] = Field((), description="Outbound receivers.")
    allow_private_urls: bool = Field(
        False, description="Allow receivers on private or loopback addresses."
    )
    inbound: tuple[InboundTrigger, ...] = Field((), description="Inbound triggers.")


@hookimpl
def hotplex_add_config() -> ConfigSection:
    return ConfigSection(name="webhook", model=WebhookSettings, description=manifest.description)
