"""The whole configuration: the core sections plus one validated section per plugin."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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
    TemplatesSettings,
)

__all__ = [
    "ALWAYS_ON",
    "PluginSettings",
    "Settings",
    "plugin_enabled",
    "plugin_off",
    "secret_values",
]


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
    templates: TemplatesSettings = Field(default_factory=TemplatesSettings)
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


#: plugins nothing can switch off (they compose HotPlex itself)
ALWAYS_ON = frozenset({"core"})


def plugin_off(settings: Settings, name: str, *, disabled: Iterable[str] = ()) -> str | None:
    """Why plugin ``name`` is switched off, or None when it is on: the one rule.

    In order: core is always on; a plugin named in ``disabled`` (``HOTPLEX_DISABLE_PLUGINS``)
    or missing from ``plugins_enabled`` (when set) is off; a plugin with a config section
    whose model has an ``enabled`` key is on when it says so; one whose section has no
    ``enabled`` key is on when the config file sets any key of it; a plugin without a
    section is on. The plugin manager's :meth:`~hotplex.plugins.HotplexPluginManager.
    switched_on` view applies it to every registration kind but config sections and CLI
    commands (docs/plugins.md, "Switching a plugin off").
    """
    if name in ALWAYS_ON:
        return None
    if name in set(disabled):
        return "disabled by HOTPLEX_DISABLE_PLUGINS"
    if settings.plugins_enabled is not None and name not in settings.plugins_enabled:
        return "not in plugins_enabled"
    section = settings.plugins.get(name)
    if not isinstance(section, BaseModel):
        return None
    if "enabled" in type(section).model_fields:
        if not getattr(section, "enabled", False):
            return f"plugins.{name}.enabled is false"
        return None
    if not section.model_fields_set:
        return f"plugins.{name} is not configured"
    return None


def plugin_enabled(settings: Settings, name: str, *, disabled: Iterable[str] = ()) -> bool:
    """Whether plugin ``name`` is on and has a config section (what a chat adapter needs:
    its factory gets the section); :func:`plugin_off` is the rule."""
    return name in settings.plugins and plugin_off(settings, name, disabled=disabled) is None


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
