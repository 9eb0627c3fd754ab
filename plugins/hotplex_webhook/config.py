"""The ``plugins.webhook`` section: outbound subscriptions and inbound triggers."""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from hotplex.address import Address
from hotplex.config import Duration, PluginSettings, UnattendedPolicy

__all__ = [
    "InboundTrigger",
    "Subscription",
    "WebhookSettings",
    "check_secret",
    "consumer_name",
]

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

#: Standard Webhooks' example schedule: the delays between attempts (10 attempts in all).
DEFAULT_SCHEDULE: tuple[float, ...] = (
    5.0,
    300.0,
    1800.0,
    7200.0,
    18000.0,
    36000.0,
    50400.0,
    72000.0,
    86400.0,
)


def consumer_name(subscription: str) -> str:
    """The subscription's consumer of core's outbox."""
    return f"webhook:{subscription}"


def check_secret(value: SecretStr) -> SecretStr:
    """A Standard Webhooks secret: ``whsec_`` and base64 of at least 16 bytes."""
    import base64
    import binascii

    raw = value.get_secret_value()
    if not raw.startswith("whsec_"):
        raise ValueError("a signing secret starts with whsec_ (then base64)")
    try:
        key = base64.b64decode(raw[len("whsec_") :] + "==", validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the part after whsec_ is not base64") from exc
    if len(key) < 16:
        raise ValueError("a signing secret needs at least 16 bytes (24 base64 characters)")
    return value


class Subscription(PluginSettings):
    name: str = Field("", description="Names the subscription (default: from its URL).")
    url: str = Field(description="Receiver URL (http or https).")
    secret: SecretStr = Field(description="Signing secret, whsec_<base64>.")
    previous_secrets: tuple[SecretStr, ...] = Field(
        (), description="Older secrets also signed with during a rotation."
    )
    events: tuple[str, ...] = Field(
        ("*",), description="Event and audit types (fnmatch patterns), or '*'."
    )
    timeout: Duration = Field(15.0, description="Per attempt, connecting included.")
    retry_schedule: tuple[Duration, ...] = Field(
        DEFAULT_SCHEDULE, description="Delays before each retry; then dead letter."
    )
    concurrency: int = Field(4, ge=1, le=64, description="Requests in flight at once.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("a webhook URL is http(s)://host[:port]/path")
        return value

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        return check_secret(value)

    @field_validator("previous_secrets")
    @classmethod
    def _previous(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        return tuple(check_secret(v) for v in value)

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("name") and isinstance(data.get("url"), str):
            digest = hashlib.sha256(data["url"].encode()).hexdigest()[:10]
            data = {**data, "name": f"sub-{digest}"}
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("a subscription name is lowercase letters, digits, _ and -")
        return value


class InboundTrigger(PluginSettings):
    name: str = Field(description="Served at /hooks/v1/<name>.")
    secret: SecretStr = Field(
        description="Verifies the sender: whsec_<base64> (standard) or GitHub's secret."
    )
    scheme: Literal["standard", "github"] = Field(
        "standard", description="Signature scheme: Standard Webhooks, or X-Hub-Signature-256."
    )
    prompt: str = Field(description="Jinja2 template of the prompt; `payload` is the body.")
    deliver_to: str | None = Field(None, description="Conversation address for the result.")
    policy: UnattendedPolicy = Field("deny", description="Tool approvals for triggered turns.")
    max_body_bytes: int = Field(1 << 20, ge=1, description="Larger bodies get 413.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("a trigger name is lowercase letters, digits, _ and -")
        return value

    @field_validator("deliver_to")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else str(Address.parse(value))

    @model_validator(mode="after")
    def _secret_fits(self) -> InboundTrigger:
        if self.scheme == "standard":
            check_secret(self.secret)
        elif not self.secret.get_secret_value():
            raise ValueError("a GitHub trigger needs its webhook secret")
        return self


class WebhookSettings(PluginSettings):
    subscriptions: tuple[Subscription, ...] = Field((), description="Outbound receivers.")
    allow_private_urls: bool = Field(
        False, description="Allow receivers on private, loopback or link-local addresses."
    )
    inbound: tuple[InboundTrigger, ...] = Field((), description="Inbound triggers.")
    replay_window: Duration = Field(
        300.0, description="Standard triggers: how far a webhook-timestamp may be off."
    )
    answer_within: Duration = Field(
        30.0, description="A trigger's answer comes in the response if ready by then, else 202."
    )

    @model_validator(mode="after")
    def _unique(self) -> WebhookSettings:
        for kind, names in (
            ("subscription", [s.name for s in self.subscriptions]),
            ("trigger", [t.name for t in self.inbound]),
        ):
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    raise ValueError(f"two {kind}s are named {name!r}")
                seen.add(name)
        return self
