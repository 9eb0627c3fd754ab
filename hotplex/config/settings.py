"""The whole configuration: the core sections plus one validated section per plugin."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, Field, SecretStr

from hotplex.config.chat import ChatSettings
from hotplex.config.models import (
    EngineSettings,
    ProjectSettings,
    ProviderSettings,
    Section,
    SecuritySettings,
    ServerSettings,
    StorageSettings,
)

__all__ = ["PluginSettings", "Settings", "plugin_enabled", "secret_values"]


class PluginSettings(Section):
    """Base for a plugin's config section (frozen, unknown keys are errors)."""


class Settings(Section):
    """Frozen settings of one HotPlex instance."""

    server: ServerSettings = Field(default_factory=ServerSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    projects: tuple[ProjectSettings, ...] = Field(
        (), description="Conversation patterns bound to repositories, first match wins."
    )
    provider: ProviderSettings = Field(default_factory=ProviderSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)
    plugins_enabled: tuple[str, ...] | None = Field(
        None, description="Allow-list of entry-point plugins to load (default: all)."
    )
    plugins: dict[str, Any] = Field(
        default_factory=dict, description="plugins.<name>: each plugin's own section."
    )

    @property
    def storage_url(self) -> str:
        if self.storage.url:
            return self.storage.url
        return f"sqlite+aiosqlite:///{self.engine.data_dir / 'hotplex.db'}"


def plugin_enabled(settings: Settings, name: str) -> bool:
    """Whether plugin ``name`` should run: its section's ``enabled`` key when it has one,
    otherwise whether the config file set any key of its section."""
    section = settings.plugins.get(name)
    if not isinstance(section, BaseModel):
        return False
    if "enabled" in type(section).model_fields:
        return bool(getattr(section, "enabled", False))
    return bool(section.model_fields_set)


def _walk_secrets(value: Any) -> Iterator[str]:
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        if secret:
            yield secret
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _walk_secrets(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _walk_secrets(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _walk_secrets(item)


def secret_values(settings: Settings) -> frozenset[str]:
    """Every secret in the config: never passed to an agent, never logged."""
    return frozenset(_walk_secrets(settings))
