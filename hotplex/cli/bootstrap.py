"""Compose plugins and config the same way for every command (and for the daemon)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import yaml

from hotplex.config import LoadedConfig, find_config_file, load_settings
from hotplex.plugins import ENTRY_POINT_GROUP, HotplexPluginManager, make_plugin_manager

__all__ = ["Composition", "compose", "peek_plugins_enabled"]


@dataclass(frozen=True)
class Composition:
    plugins: HotplexPluginManager
    config: LoadedConfig


def peek_plugins_enabled(path: Path | None) -> tuple[str, ...] | None:
    """Read only ``plugins_enabled`` before plugins load (the rest needs their sections)."""
    if path is None:
        return None
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None  # load_settings reports it properly
    value = raw.get("plugins_enabled") if isinstance(raw, dict) else None
    return tuple(str(v) for v in value) if isinstance(value, list) else None


def make_plugins_for(
    config_path: str | None, environ: Mapping[str, str] | None = None
) -> tuple[HotplexPluginManager, Path | None]:
    source = find_config_file(config_path)
    pm = make_plugin_manager(plugins_enabled=peek_plugins_enabled(source), environ=environ)
    return pm, source


def compose(
    config_path: str | None = None,
    *,
    plugins: HotplexPluginManager | None = None,
    environ: Mapping[str, str] | None = None,
) -> Composition:
    """Plugins, then their config sections, then the validated settings."""
    if plugins is None:
        plugins, source = make_plugins_for(config_path, environ)
    else:
        source = find_config_file(config_path)
    known = {ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    known.update(info.name for info in plugins.plugins())
    loaded = load_settings(
        source,
        text=None if source is not None else "",
        sections=plugins.config_sections().values(),
        known_plugins=known,
        environ=os.environ if environ is None else environ,
    )
    return Composition(plugins=plugins, config=loaded)
