"""The core config sections as frozen pydantic models, one per top-level key.

Every model forbids unknown keys; every field has a default that runs HotPlex on one
machine. Secrets are ``SecretStr`` so ``config show`` and logs never print them.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from hotplex.address import Address
from hotplex.config.base import (
    DEFAULT_NAMESPACE,
    Duration,
    Section,
    UserPath,
    default_data_dir,
    parse_duration,
)
from hotplex.config.server import ApiKey, RateLimitSettings, ServerSettings
from hotplex.identity import check_identity

__all__ = [
    "DEFAULT_NAMESPACE",
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
    "TemplatesSettings",
    "UnattendedPolicy",
    "WafSettings",
    "default_data_dir",
    "parse_duration",
]


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
        (),
        description="Identities who may approve tool calls and asked prompts, e.g. slack:U01 "
        "(empty: the conversation's owner; * anyone).",
    )
    owners: tuple[str, ...] = Field(
        (), description="Identities who may run privileged chat commands, e.g. slack:U01."
    )

    @field_validator("approvers")
    @classmethod
    def _approver_identities(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(check_identity(v, allow_anyone=True) for v in value)

    @field_validator("owners")
    @classmethod
    def _owner_identities(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(check_identity(v) for v in value)


class StorageSettings(Section):
    enabled: bool = Field(
        True,
        description="Store sessions, turns and events (false: nothing survives a restart).",
    )
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


class TemplatesSettings(Section):
    dir: UserPath | None = Field(
        None,
        description=(
            "Folder of your own templates: <dir>/<folder>/<path> replaces the shipped "
            "template <folder>/<path> (e.g. core/text/usage.md.j2)."
        ),
    )


class AllowTools(Section):
    allow_tools: tuple[str, ...] = Field(description="Tools run without a person.")


class RouteTo(Section):
    route_to: str = Field(description="Conversation address where a person is asked.")
    approvers: tuple[str, ...] = Field(
        (),
        description="Identities who may decide there (empty: security.approvers, else "
        "anyone in that conversation).",
    )

    @field_validator("approvers")
    @classmethod
    def _approver_identities(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(check_identity(v, allow_anyone=True) for v in value)

    @field_validator("route_to")
    @classmethod
    def _an_address(cls, value: str) -> str:
        return str(Address.parse(value))


#: What an unattended session (cron, webhook, relay) does when a tool needs approval.
UnattendedPolicy = Literal["deny"] | AllowTools | RouteTo
