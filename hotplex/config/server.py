"""The ``server`` section: the gateway's address, its keys and its limits."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator

from hotplex.config.base import Duration, Section

__all__ = [
    "MIN_SECRET_LENGTH",
    "ApiKey",
    "FailedAuthLimit",
    "FrameLimit",
    "RateLimitSettings",
    "RequestLimit",
    "ServerSettings",
]


#: The shortest API key or admin token accepted: a short secret is a guessable one.
MIN_SECRET_LENGTH = 16
_GENERATE = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def _long_enough(secret: SecretStr | None) -> SecretStr | None:
    if secret is not None and len(secret.get_secret_value()) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"too short ({len(secret.get_secret_value())} characters): use at least "
            f"{MIN_SECRET_LENGTH}, e.g. from `{_GENERATE}`"
        )
    return secret


class ApiKey(Section):
    name: str = Field(description="Who holds the key; audits and session ownership name it.")
    key: SecretStr = Field(description="The secret itself, at least 16 characters (use ${VAR}).")

    _key_length = field_validator("key")(_long_enough)


class RequestLimit(Section):
    """Sized for a team's backend: 100 users reconnecting at once fit in the burst."""

    per_minute: int = Field(
        1200, ge=0, description="HTTP requests and WebSocket handshakes per key a minute (0: off)."
    )
    burst: int = Field(200, ge=1, description="Requests a key may send at once before waiting.")


class FrameLimit(Section):
    """Sized for a team's backend: 100 connections each sending a frame a second."""

    per_minute: int = Field(
        6000, ge=0, description="WebSocket frames per key and minute, all its sockets (0: off)."
    )
    burst: int = Field(1000, ge=1, description="Frames a key may send at once before waiting.")


class RateLimitSettings(Section):
    enabled: bool = Field(True, description="false: no per-key limit at all.")
    requests: RequestLimit = Field(
        default_factory=RequestLimit,
        description="Token bucket of HTTP requests and WebSocket connection attempts per key.",
    )
    frames: FrameLimit = Field(
        default_factory=FrameLimit, description="Token bucket of WebSocket frames per key."
    )

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        if isinstance(data, dict) and ({"per_minute", "burst"} & set(data)):
            raise ValueError(
                "per_minute and burst are now set per kind of traffic: requests.per_minute and "
                "requests.burst (HTTP requests and WebSocket connection attempts), "
                "frames.per_minute and frames.burst (WebSocket frames); enabled: false turns "
                "both off"
            )
        return data


class FailedAuthLimit(Section):
    """After ``burst`` failed authentications in a row, an address waits (429)."""

    per_minute: int = Field(
        6, ge=0, description="Failed authentications an address regains a minute (0: off)."
    )
    burst: int = Field(
        10, ge=1, description="Failed authentications in a row before an address gets 429."
    )


#: An API key name is part of its sessions' addresses (web:<name>/<id>).
_KEY_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: The identity of the admin token on the gateway; a key may not take it.
_RESERVED_KEY_NAMES = frozenset({"admin"})


class ServerSettings(Section):
    host: str = Field("127.0.0.1", description="Bind address of the gateway.")
    port: int = Field(8080, ge=0, le=65535, description="Gateway port (0 picks a free one).")
    api_keys: tuple[ApiKey, ...] = Field((), description="Keys clients authenticate with.")
    admin_token: SecretStr | None = Field(
        None,
        description="Bearer token of the admin API, at least 16 characters; without it, "
        "loopback only.",
    )
    allowed_origins: tuple[str, ...] = Field(
        (), description="Origins allowed on the WebSocket handshake (besides same-origin)."
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest HTTP request body; larger is refused with 413."
    )
    max_frame_bytes: int = Field(
        1_048_576, ge=1024, description="Largest WebSocket frame; larger closes with 1009."
    )
    client_queue: int = Field(
        1000, ge=1, description="Frames queued for a client that is not reading, then dropped."
    )
    rate_limit: RateLimitSettings = Field(
        default_factory=RateLimitSettings, description="Token buckets per API key."
    )
    failed_auth: FailedAuthLimit = Field(
        default_factory=FailedAuthLimit,
        description="Token bucket of failed authentications per client address.",
    )
    sse_heartbeat: Duration = Field(
        15.0, gt=0, description="Comment line sent on an idle SSE stream this often."
    )
    ws_max_executes: int = Field(
        16,
        ge=1,
        description="Prompts one WebSocket may have waiting to start (e.g. for an approval).",
    )
    ws_heartbeat: Duration = Field(
        30.0, ge=0, description="WebSocket ping interval; a peer missing a pong is closed (0: off)."
    )

    _token_length = field_validator("admin_token")(_long_enough)

    @field_validator("api_keys")
    @classmethod
    def _key_names(cls, keys: tuple[ApiKey, ...]) -> tuple[ApiKey, ...]:
        seen: set[str] = set()
        for key in keys:
            if not _KEY_NAME.fullmatch(key.name):
                raise ValueError(
                    f"api key name {key.name!r}: use 1 to 64 letters, digits, '.', '_' or '-'"
                )
            if key.name in _RESERVED_KEY_NAMES:
                raise ValueError(f"api key name {key.name!r} is reserved; choose another")
            if key.name in seen:
                raise ValueError(f"api key name {key.name!r} is used twice")
            seen.add(key.name)
        return keys
