"""The typed plugin-manager facade and the factory that composes plugins.

Core reaches hooks only through :class:`HotplexPluginManager` (one method per hook).
:func:`make_plugin_manager` registers the built-in core plugins in code, then the
entry points of group ``hotplex``, honouring ``HOTPLEX_DISABLE_PLUGINS`` (comma-separated
names) and the config's ``plugins_enabled`` allow-list.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any, Literal, TypeVar

import pluggy

from hotplex import hookspecs
from hotplex.config.settings import ALWAYS_ON, Settings, plugin_off
from hotplex.errors import DuplicateNameError, PluginError
from hotplex.records import (
    AgentToolSpec,
    ChatAdapterSpec,
    ChatCommandSpec,
    CommandSpec,
    ConfigSection,
    DoctorCheck,
    MiddlewareSpec,
    Migration,
    OutboxSpec,
    PluginManifest,
    ProviderSpec,
    Requirement,
    ResourceSpec,
    RouteSpec,
    ShutdownSpec,
    SinkSpec,
    StorageSpec,
    TemplateSpec,
)

__all__ = [
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "HotplexPluginManager",
    "PluginInfo",
    "make_plugin_manager",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hotplex"
#: (name, module) of the core plugins, registered in code before entry points.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (("core", "hotplex.core.plugin"),)
UNDISABLEABLE = ALWAYS_ON

Source = Literal["builtin", "entry point", "manual"]
R = TypeVar("R")


@dataclass(frozen=True)
class PluginInfo:
    """What ``hotplex plugins`` shows for one plugin."""

    name: str
    source: Source
    module: str
    version: str | None
    hooks: tuple[str, ...]
    available: bool = True
    reason: str | None = None
    loaded: bool = True
    #: what makes an unavailable plugin available (its requirement's install hint)
    fix: str | None = None


def disabled_from_env(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    raw = (os.environ if environ is None else environ).get("HOTPLEX_DISABLE_PLUGINS", "")
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


def _missing_requirement(module: ModuleType) -> Requirement | None:
    """The first requirement of the module's manifest that cannot be imported."""
    manifest = getattr(module, "manifest", None)
    if not isinstance(manifest, PluginManifest):
        return None
    for req in manifest.requires:
        try:
            found = importlib.util.find_spec(req.module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return req
    return None


class HotplexPluginManager:
    """A typed facade over pluggy: one method per hook, records attributed to plugins."""

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._infos: dict[str, PluginInfo] = {}
        #: names ``HOTPLEX_DISABLE_PLUGINS`` switched off (see :func:`plugin_off`)
        self.disabled: frozenset[str] = frozenset()
        #: plugins whose records this view leaves out (see :meth:`switched_on`)
        self._off: dict[str, str] = {}

    def switched_on(self, settings: Settings) -> HotplexPluginManager:
        """A view of the same plugins that leaves out every record of a plugin switched
        off by :func:`~hotplex.config.plugin_off` (``HOTPLEX_DISABLE_PLUGINS``,
        ``plugins_enabled``, ``enabled: false``): its routes, start-up resources, shutdown
        callbacks, sinks, middleware, chat commands and adapters, agent tools, providers,
        storage backends, templates and doctor checks. Its config section (the file is
        validated against it) and its CLI commands (built before the config is read, so a
        switched-off plugin can still be set up) remain. The runtime builds everything
        through this view."""
        view = copy.copy(self)
        view._off = {
            info.name: reason
            for info in self._infos.values()
            if info.loaded
            and (reason := plugin_off(settings, info.name, disabled=self.disabled)) is not None
        }
        return view

    def switched_off(self) -> dict[str, str]:
        """Plugin name -> why this view leaves its records out."""
        return dict(self._off)

    # -- registration ------------------------------------------------------------------

    def register(
        self,
        plugin: ModuleType | object,
        name: str,
        *,
        source: Source = "manual",
        version: str | None = None,
    ) -> PluginInfo:
        if name in self._infos and self._infos[name].loaded:
            raise PluginError(f"plugin name {name!r} is used twice")
        self._pm.register(plugin, name=name)
        module = plugin if isinstance(plugin, ModuleType) else None
        missing = _missing_requirement(module) if module is not None else None
        hooks = tuple(sorted(impl.name for impl in self._pm.get_hookcallers(plugin) or ()))
        info = PluginInfo(
            name=name,
            source=source,
            module=getattr(plugin, "__name__", type(plugin).__name__),
            version=version,
            hooks=hooks,
            available=missing is None,
            reason=None if missing is None else f"needs {missing.module}: {missing.install_hint}",
            fix=None if missing is None else missing.install_hint,
        )
        self._infos[name] = info
        return info

    def note(self, info: PluginInfo) -> None:
        """Record a plugin that was found but not loaded (disabled or broken)."""
        self._infos.setdefault(info.name, info)

    def plugins(self) -> list[PluginInfo]:
        return list(self._infos.values())

    def loaded_names(self) -> list[str]:
        return [i.name for i in self._infos.values() if i.loaded]

    def info(self, name: str) -> PluginInfo | None:
        return self._infos.get(name)

    # -- collecting records ------------------------------------------------------------

    def _collect(
        self, hook_name: str, kind: type[R], *, even_off: bool = False
    ) -> list[tuple[str, R, bool]]:
        """Call every implementation of a hook; (plugin name, record, trylast) in call order.
        Plugins switched off in this view are skipped unless ``even_off``."""
        caller = getattr(self._pm.hook, hook_name)
        out: list[tuple[str, R, bool]] = []
        for impl in reversed(caller.get_hookimpls()):
            if impl.plugin_name in self._off and not even_off:
                continue
            try:
                result = impl.function()
            except Exception as exc:
                raise PluginError(
                    f"plugin {impl.plugin_name!r} failed in {hook_name}: {exc}"
                ) from exc
            if result is None:
                items = []
            elif isinstance(result, list | tuple):
                items = list(result)
            else:
                items = [result]
            for item in items:
                if not isinstance(item, kind):
                    raise PluginError(
                        f"plugin {impl.plugin_name!r}: {hook_name} returned "
                        f"{type(item).__name__}, expected {kind.__name__}"
                    )
                out.append((impl.plugin_name, item, bool(impl.trylast)))
        return out

    @staticmethod
    def _unique(
        kind: str, items: Iterable[tuple[str, R, bool]], key: Callable[[R], str]
    ) -> dict[str, R]:
        chosen: dict[str, tuple[str, R, bool]] = {}
        for plugin, record, fallback in items:
            name = key(record)
            if name in chosen:
                other_plugin, _, other_fallback = chosen[name]
                if other_fallback != fallback:
                    if other_fallback:  # a regular plugin replaces a trylast default
                        chosen[name] = (plugin, record, fallback)
                    continue
                raise DuplicateNameError(kind, name, other_plugin, plugin)
            chosen[name] = (plugin, record, fallback)
        return {name: record for name, (_, record, _) in chosen.items()}

    def config_sections(self) -> dict[str, ConfigSection]:
        items = self._collect("hotplex_add_config", ConfigSection, even_off=True)
        return self._unique("config section", items, lambda s: s.name)

    def providers(self) -> dict[str, ProviderSpec]:
        items = self._collect("hotplex_register_providers", ProviderSpec)
        return self._unique("provider", items, lambda s: s.name)

    def chat_adapters(self) -> dict[str, ChatAdapterSpec]:
        items = self._collect("hotplex_register_chat_adapters", ChatAdapterSpec)
        return self._unique("chat adapter", items, lambda s: s.name)

    def storages(self) -> dict[str, StorageSpec]:
        """Storage backends by URL scheme."""
        items = self._collect("hotplex_register_storage", StorageSpec)
        per_scheme = [(p, (scheme, s), t) for p, s, t in items for scheme in s.schemes]
        chosen = self._unique("storage scheme", per_scheme, lambda pair: pair[0])
        return {scheme: spec for scheme, (_, spec) in chosen.items()}

    def migrations(self) -> list[Migration]:
        """Every plugin's schema migrations. A plugin migrates only its own component (its
        name): another component is a :class:`PluginError` naming the plugin."""
        out: list[Migration] = []
        for plugin, migration, _ in self._collect("hotplex_register_migrations", Migration):
            if migration.component != plugin:
                raise PluginError(
                    f"plugin {plugin!r}: migration {migration} must name its own component "
                    f"({plugin!r})"
                )
            out.append(migration)
        return out

    def sinks(self) -> dict[str, SinkSpec]:
        return self._unique(
            "sink", self._collect("hotplex_register_sinks", SinkSpec), lambda s: s.name
        )

    def outboxes(self) -> dict[str, OutboxSpec]:
        items = self._collect("hotplex_register_outbox", OutboxSpec)
        return self._unique("outbox", items, lambda o: o.name)

    def middleware(self) -> list[MiddlewareSpec]:
        items = self._collect("hotplex_register_middleware", MiddlewareSpec)
        unique = self._unique("middleware", items, lambda s: s.name)
        return sorted(unique.values(), key=lambda s: (s.order, s.name))

    def routes(self) -> list[RouteSpec]:
        items = self._collect("hotplex_register_routes", RouteSpec)
        unique = self._unique("route", items, lambda r: f"{r.method.upper()} {r.path}")
        return list(unique.values())

    def cli_commands(self) -> dict[str, CommandSpec]:
        items = [
            (p, r, t)
            for p, r, t in self._collect("hotplex_register_commands", object, even_off=True)
            if isinstance(r, CommandSpec)
        ]
        return self._unique("CLI command", items, lambda c: c.command.name or "")

    def chat_commands(self) -> dict[str, ChatCommandSpec]:
        items = [
            (p, r, t)
            for p, r, t in self._collect("hotplex_register_commands", object)
            if isinstance(r, ChatCommandSpec)
        ]
        return self._unique("chat command", items, lambda c: c.name)

    def agent_tools(self) -> dict[str, AgentToolSpec]:
        items = self._collect("hotplex_register_agent_tools", AgentToolSpec)
        return self._unique("agent tool", items, lambda t: t.name)

    def templates(self) -> dict[str, TemplateSpec]:
        items = self._collect("hotplex_register_templates", TemplateSpec)
        return self._unique("template folder", items, lambda t: t.name)

    def doctor_checks(self) -> list[tuple[str, DoctorCheck]]:
        items = self._collect("hotplex_doctor_checks", DoctorCheck)
        self._unique("doctor check", items, lambda c: c.name)
        return [(plugin, check) for plugin, check, _ in items]

    def startup_resources(self) -> list[ResourceSpec]:
        items = self._collect("hotplex_startup", ResourceSpec)
        return list(self._unique("resource", items, lambda r: r.name).values())

    def shutdown_callbacks(self) -> list[ShutdownSpec]:
        items = self._collect("hotplex_shutdown", ShutdownSpec)
        return list(self._unique("shutdown callback", items, lambda r: r.name).values())

    def check(self) -> None:
        """Collect every kind of record once, so duplicate names fail at start-up."""
        self.config_sections()
        self.providers()
        self.chat_adapters()
        self.storages()
        self.migrations()
        self.sinks()
        self.outboxes()
        self.middleware()
        self.routes()
        self.cli_commands()
        self.chat_commands()
        self.agent_tools()
        self.templates()
        self.doctor_checks()
        self.startup_resources()
        self.shutdown_callbacks()


def _hotplex_version() -> str:
    from hotplex import __version__

    return __version__


def _load_builtin(pm: HotplexPluginManager, name: str, module_name: str) -> None:
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise PluginError(
            f"built-in plugin {name!r} ({module_name}) failed to import: {exc!r}; "
            "this is a bug or a broken installation: reinstall hotplex"
        ) from exc
    pm.register(module, name, source="builtin", version=_hotplex_version())


def _load_entry_point(pm: HotplexPluginManager, ep: metadata.EntryPoint) -> None:
    version = ep.dist.version if ep.dist is not None else None
    try:
        plugin = ep.load()
    except Exception as exc:
        log.warning("plugin %r (%s) failed to load and is skipped: %r", ep.name, ep.value, exc)
        pm.note(
            PluginInfo(
                name=ep.name,
                source="entry point",
                module=ep.value,
                version=version,
                hooks=(),
                available=False,
                reason=f"failed to load: {exc!r}",
                loaded=False,
            )
        )
        return
    try:
        pm.register(plugin, ep.name, source="entry point", version=version)
    except (ValueError, PluginError) as exc:
        log.warning("plugin %r could not be registered and is skipped: %s", ep.name, exc)


def make_plugin_manager(
    *,
    entry_points: bool = True,
    builtins: bool = True,
    plugins_enabled: Iterable[str] | None = None,
    environ: Mapping[str, str] | None = None,
    extra: Iterable[tuple[str, Any]] = (),
) -> HotplexPluginManager:
    """Build a fresh plugin manager: built-ins, then entry points, then ``extra``.

    ``plugins_enabled`` (None = all) allow-lists entry-point plugins; the environment's
    ``HOTPLEX_DISABLE_PLUGINS`` removes plugins by name (the core cannot be disabled).
    """
    pm = HotplexPluginManager()
    disabled = disabled_from_env(environ)
    pm.disabled = disabled
    allowed = None if plugins_enabled is None else frozenset(plugins_enabled)

    def skip(name: str, source: Source, module: str, why: str) -> None:
        pm.note(
            PluginInfo(name, source, module, None, (), available=True, reason=why, loaded=False)
        )

    if builtins:
        for name, module_name in BUILTIN_PLUGINS:
            if name in disabled and name not in UNDISABLEABLE:
                skip(name, "builtin", module_name, "disabled by HOTPLEX_DISABLE_PLUGINS")
                continue
            _load_builtin(pm, name, module_name)
    if entry_points:
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in disabled:
                skip(ep.name, "entry point", ep.value, "disabled by HOTPLEX_DISABLE_PLUGINS")
            elif allowed is not None and ep.name not in allowed:
                skip(ep.name, "entry point", ep.value, "not in plugins_enabled")
            elif pm.info(ep.name) is not None:
                log.warning("two installed plugins are named %r; keeping the first", ep.name)
            else:
                _load_entry_point(pm, ep)
    for name, plugin in extra:
        pm.register(plugin, name)
    return pm
