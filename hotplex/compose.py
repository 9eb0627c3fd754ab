"""The one way to build HotPlex: plugins, then their config sections, then a runtime.

``hotplex serve``, the Python API (:func:`hotplex.open`) and the test kit all build through
here, so they run the same parts::

    composition = load_composition("hotplex.yaml")          # plugins + validated settings
    runtime = compose(composition.config.settings, composition.plugins)
    async with runtime:                                      # storage, sinks, engine, ...
        ...

What a running HotPlex holds is decided by the plugins' start-up resources (core's:
storage, its sink and retention, the engine with the WAF tool policy and the agent tools),
middleware (core's: inbound log, WAF) and chat adapters, never by which of these entry
points built it. A part is turned off by a setting (``security.waf.enabled: false``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import yaml

from hotplex.config import LoadedConfig, Settings, find_config_file, load_settings
from hotplex.plugins import ENTRY_POINT_GROUP, HotplexPluginManager, make_plugin_manager
from hotplex.runtime import OnMessage, Runtime

__all__ = [
    "Composition",
    "compose",
    "load_composition",
    "make_plugins_for",
    "peek_plugins_enabled",
]


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
    config_path: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None
) -> tuple[HotplexPluginManager, Path | None]:
    source = find_config_file(None if config_path is None else str(config_path))
    pm = make_plugin_manager(plugins_enabled=peek_plugins_enabled(source), environ=environ)
    return pm, source


def load_composition(
    config_path: str | os.PathLike[str] | None = None,
    *,
    plugins: HotplexPluginManager | None = None,
    environ: Mapping[str, str] | None = None,
) -> Composition:
    """Plugins (unless given), then their config sections, then the validated settings."""
    if plugins is None:
        plugins, source = make_plugins_for(config_path, environ)
    else:
        source = find_config_file(None if config_path is None else str(config_path))
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


def compose(
    settings: Settings, plugins: HotplexPluginManager, *, on_message: OnMessage | None = None
) -> Runtime:
    """A HotPlex built from ``settings`` and ``plugins``, not started yet: entering it
    (``async with``, or the gateway's cleanup context) starts every plugin's start-up
    resources, the middleware chain, the chat commands and the enabled chat adapters, and
    leaving it stops them (see :class:`~hotplex.runtime.Runtime`). ``on_message`` receives
    what the chat adapters deliver."""
    return Runtime(settings, plugins, on_message=on_message)
