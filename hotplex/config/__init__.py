"""Configuration: one YAML file validated into frozen pydantic settings."""

from __future__ import annotations

from hotplex.config.access import ChatAccessSettings
from hotplex.config.loader import LoadedConfig, find_config_file, load_settings
from hotplex.config.models import (
    AllowTools,
    ApiKey,
    Duration,
    EngineSettings,
    ProjectSettings,
    ProviderSettings,
    RouteTo,
    SecuritySettings,
    ServerSettings,
    StorageSettings,
    TemplatesSettings,
    UnattendedPolicy,
    WafSettings,
    parse_duration,
)
from hotplex.config.settings import (
    PluginSettings,
    Settings,
    plugin_enabled,
    plugin_off,
    secret_values,
)

__all__ = [
    "AllowTools",
    "ApiKey",
    "ChatAccessSettings",
    "Duration",
    "EngineSettings",
    "LoadedConfig",
    "PluginSettings",
    "ProjectSettings",
    "ProviderSettings",
    "RouteTo",
    "SecuritySettings",
    "ServerSettings",
    "Settings",
    "StorageSettings",
    "TemplatesSettings",
    "UnattendedPolicy",
    "WafSettings",
    "find_config_file",
    "load_settings",
    "parse_duration",
    "plugin_enabled",
    "plugin_off",
    "secret_values",
]
