"""The core config sections as frozen pydantic models, one per top-level key.

Every model forbids unknown keys; every field has a default that runs HotPlex on one
machine. Secrets are ``SecretStr`` so ``config show`` and logs never print them.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
)

__all__ = [
    "AllowTools",
    "ApiKey",
    "Duration",
    "EngineSettings",
    "LimitSettings",
    "ProjectSettings",
    "ProviderSettings",
    "RateLimitSettings",
    "RouteTo",
    "Section",
    "SecuritySettings",
    "ServerSettings",
    "StorageSettings",
    "UnattendedPolicy",
    "WafSettings",
    "default_data_dir",
    "parse_duration",
]

DEFAULT_NAMESPACE = uuid.UUID("5e4d8a3c-0b6f-5f2e-9a57-6b1f1d9c2a10")

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """``90`` / ``"90s"`` / ``"30m"`` / ``"1h30m"`` / ``"250ms"`` -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 10m or 2h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        elif text and _DURATION_PART.sub("", text) == "":
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
        else:
            raise ValueError(f"{value!r} is not a duration; use e.g. 30s, 10m, 2h or 1h30m")
    else:
        raise ValueError("expected a duration such as 30s, 10m or 2h")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
#: A path where ``~`` means the user's home.
UserPath = Annotated[Path, AfterValidator(lambda p: p.expanduser())]


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hotplex"


class Section(BaseModel):
    """Base of every config section: frozen, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class ApiKey(Section):
    name: str = Field(description="Who holds the key; audits and session ownership name it.")
    key: SecretStr = Field(description="The secret itself (use ${VAR}).")


class RateLimitSettings(Section):
    per_minute: int = Field(
        120, ge=0, description="Requests and WebSocket frames per API key and minute (0: off)."
    )
    burst: int = Field(30, ge=1, description="Requests a key may send at once before waiting.")


#: An API key name is part of its sessions' addresses (web:<name>/<id>).
_KEY_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: The identity of the admin token on the gateway; a key may not take it.
_RESERVED_KEY_NAMES = frozenset({"admin"})


class ServerSettings(Section):
    host: str = Field("127.0.0.1", description="Bind address of the gateway.")
    port: int = Field(8080, ge=0, le=65535, description="Gateway port (0 picks a free one).")
    api_keys: tuple[ApiKey, ...] = Field((), description="Keys clients authenticate with.")
    admin_token: SecretStr | None = Field(
        None, description="Bearer token of the admin API; without it, loopback only."
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
        default_factory=RateLimitSettings, description="Token bucket per API key."
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


class LimitSettings(Section):
    backend: Literal["auto", "cgroup2", "cgroup1", "rlimit", "off"] = Field(
        "auto", description="How agents are confined: auto picks the first that works."
    )
    memory_mb: int | None = Field(
        4096, ge=64, description="Memory of an agent's whole process tree (MiB)."
    )
    max_pids: int | None = Field(
        512, ge=8, description="Processes and threads of an agent's tree (fork-bomb guard)."
    )
    max_open_files: int | None = Field(4096, ge=64, description="Open files per process.")


class EngineSettings(Section):
    namespace: uuid.UUID = Field(
        DEFAULT_NAMESPACE, description="UUIDv5 namespace that session ids derive from."
    )
    data_dir: UserPath = Field(
        default_factory=default_data_dir,
        description="Database, per-session agent state and logs.",
    )
    work_dir: UserPath | None = Field(
        None, description="Root of per-session work directories (default <data_dir>/work)."
    )
    max_sessions: int = Field(32, ge=1, description="Live agent processes at most.")
    idle_timeout: Duration = Field(1800.0, description="Stop an idle agent after this long.")
    turn_idle_timeout: Duration = Field(
        600.0, description="Interrupt a turn silent this long (paused during approvals)."
    )
    turn_max_duration: Duration = Field(7200.0, description="Interrupt a turn running this long.")
    busy_policy: Literal["queue", "interrupt", "reject"] = Field(
        "queue", description="A message arriving during a turn: queue, interrupt or reject."
    )
    prewarm: int = Field(0, ge=0, le=64, description="Spare agent processes kept ready.")
    kill_grace: Duration = Field(5.0, description="SIGTERM to SIGKILL grace when stopping.")
    limits: LimitSettings = Field(
        default_factory=LimitSettings, description="Resource limits of agent processes."
    )

    @property
    def resolved_work_dir(self) -> Path:
        return self.work_dir if self.work_dir is not None else self.data_dir / "work"


class ProjectSettings(Section):
    match: str = Field(description="Conversation address glob, e.g. slack:T01/C02*.")
    dir: UserPath = Field(description="The repository the agent works in.")
    worktree: bool = Field(False, description="A git worktree per thread under dir.")


class ProviderSettings(Section):
    type: str = Field("claude-code", description="claude-code, opencode or a plugin's name.")
    binary: str | None = Field(
        None, description="Executable (default: node_modules/.bin/<name>, then PATH)."
    )
    model: str | None = Field(None, description="Model alias or id passed to the CLI.")
    permission_mode: Literal[
        "default", "acceptEdits", "plan", "dontAsk", "auto", "bypassPermissions"
    ] = Field("default", description="The CLI's permission mode.")
    allowed_tools: tuple[str, ...] = Field((), description="Tool rules run without asking.")
    disallowed_tools: tuple[str, ...] = Field((), description="Tool rules always denied.")
    append_system_prompt: str | None = Field(None, description="Appended to the system prompt.")
    mcp_config: str | None = Field(None, description="MCP servers: JSON text or a file path.")
    env: dict[str, str] = Field(
        default_factory=dict, description="Extra environment for the agent process."
    )


class WafSettings(Section):
    enabled: bool = Field(True, description="Check prompts and tool calls.")
    rule_files: tuple[UserPath, ...] = Field((), description="Extra rule files (YAML).")
    overrides: dict[str, Literal["block", "ask", "warn", "off"]] = Field(
        default_factory=dict, description="Rule id or category -> action."
    )
    allow: tuple[str, ...] = Field(
        (), description="RE2 patterns of commands and paths trusted in this workspace."
    )


class SecuritySettings(Section):
    waf: WafSettings = Field(default_factory=WafSettings, description="The command WAF.")
    approval_timeout: Duration = Field(300.0, description="Undecided approvals are denied.")
    approvers: tuple[str, ...] = Field(
        (), description="Users who may approve tool calls (empty: the conversation's owner)."
    )
    owners: tuple[str, ...] = Field((), description="Users who may run admin chat commands.")


class StorageSettings(Section):
    url: str | None = Field(
        None,
        description="SQLAlchemy async URL (default sqlite+aiosqlite:///<data_dir>/hotplex.db).",
    )
    retention_days: int = Field(30, ge=0, description="Prune events older than this (0: keep).")

    @field_validator("url")
    @classmethod
    def _has_scheme(cls, value: str | None) -> str | None:
        if value is not None and "://" not in value:
            raise ValueError("expected a URL such as postgresql+asyncpg://user@host/db")
        return value


class AllowTools(Section):
    allow_tools: tuple[str, ...] = Field(description="Tools run without a person.")


class RouteTo(Section):
    route_to: str = Field(description="Conversation address where a person is asked.")


#: What an unattended session (cron, webhook, relay) does when a tool needs approval.
UnattendedPolicy = Literal["deny"] | AllowTools | RouteTo
