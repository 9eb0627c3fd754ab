"""The built-in core plugin: templates and the core's own doctor checks.

Core registers itself like any plugin does (it is first in BUILTIN_PLUGINS); engine,
providers, storage and gateway add their records here as they arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from hotplex.binaries import PINNED_VERSIONS, binary_version, find_binary
from hotplex.context import PluginContext
from hotplex.events import AgentEvent
from hotplex.hookspecs import hookimpl
from hotplex.interfaces import Provider
from hotplex.records import (
    ChatCommandSpec,
    CheckResult,
    DoctorCheck,
    MiddlewareSpec,
    ProviderSpec,
    ResourceSpec,
    SinkSpec,
    StorageSpec,
    TemplateSpec,
)

__all__ = ["check_data_dir", "check_provider", "check_python", "check_storage"]


def check_python(ctx: PluginContext) -> CheckResult:
    version = ".".join(map(str, sys.version_info[:3]))
    return CheckResult(True, f"Python {version} ({sys.executable})")


def check_provider(ctx: PluginContext) -> CheckResult:
    settings = ctx.settings.provider
    spec = ctx.plugins.providers().get(settings.type)
    if spec is None:
        known = ", ".join(sorted(ctx.plugins.providers())) or "none"
        return CheckResult(
            False,
            f"provider.type {settings.type!r} is not registered by any plugin "
            f"(registered: {known})",
            hint="set provider.type to a registered provider, or install its plugin",
        )
    if spec.binary is None:
        return CheckResult(True, f"{spec.name}: no executable needed")
    path = find_binary(spec.binary, settings.binary)
    if path is None:
        return CheckResult(
            False,
            f"{spec.name}: executable {settings.binary or spec.binary!r} not found",
            hint="run `make setup` (installs the pinned CLIs into node_modules) "
            "or set provider.binary",
        )
    version = binary_version(path)
    if version is None:
        return CheckResult(False, f"{path}: `--version` failed", hint="reinstall: make setup")
    pinned = PINNED_VERSIONS.get(spec.binary)
    if pinned and version != pinned:
        return CheckResult(
            True,
            f"{path} is version {version}; HotPlex is tested with {pinned}",
            hint="run `make setup` to install the pinned version",
            warning=True,
        )
    return CheckResult(True, f"{path} ({version})")


def check_credentials(ctx: PluginContext) -> CheckResult:
    if ctx.settings.provider.type != "claude-code":
        return CheckResult(True, "not needed for this provider")
    env = {**os.environ, **ctx.settings.provider.env}
    if env.get("ANTHROPIC_API_KEY") or env.get("ANTHROPIC_AUTH_TOKEN"):
        return CheckResult(True, "ANTHROPIC_API_KEY is set")
    config_dir = Path(env.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude")
    if (config_dir / ".credentials.json").is_file():
        return CheckResult(True, f"Claude Code login found in {config_dir}")
    return CheckResult(
        False,
        "no Anthropic credentials: neither ANTHROPIC_API_KEY nor a `claude login`",
        hint="export ANTHROPIC_API_KEY=sk-ant-... (or run `node_modules/.bin/claude login`)",
    )


def check_data_dir(ctx: PluginContext) -> CheckResult:
    data_dir = ctx.settings.engine.data_dir
    probe = data_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        return CheckResult(
            False, f"{data_dir} is not writable", hint="set engine.data_dir to a writable folder"
        )
    return CheckResult(True, str(data_dir))


def check_limits(ctx: PluginContext) -> CheckResult:
    from hotplex.engine.limits import detect_backend

    setting = ctx.settings.engine.limits.backend
    if setting == "off":
        return CheckResult(
            True, "agents run without resource limits (engine.limits.backend: off)", warning=True
        )
    backend = detect_backend(prefer=None if setting == "auto" else setting)
    if backend.name == "rlimit":
        return CheckResult(
            True,
            "rlimits only: no writable cgroup, so a fork bomb is not bounded for root and "
            "setsid() grandchildren can outlive their agent",
            hint="run HotPlex with a delegated cgroup (systemd Delegate=yes) or as root",
            warning=True,
        )
    return CheckResult(True, f"agents confined with {backend.name}")


async def _ping_database(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


def check_storage(ctx: PluginContext) -> CheckResult:
    url = ctx.settings.storage_url
    scheme = url.split("://", 1)[0]
    if scheme.startswith("sqlite"):
        return (
            check_data_dir(ctx)
            if ctx.settings.storage.url is None
            else CheckResult(True, f"SQLite at {url.split(':///', 1)[-1]}")
        )
    from hotplex.errors import ConfigError
    from hotplex.storage.dialects import parse_url

    try:
        parse_url(url)  # a missing driver says which extra installs it
    except ConfigError as exc:
        return CheckResult(False, str(exc))
    try:
        asyncio.run(asyncio.wait_for(_ping_database(url), timeout=5.0))
    except Exception as exc:
        safe = url.split("@")[-1]
        return CheckResult(
            False,
            f"cannot reach {scheme} at {safe}: {type(exc).__name__}: {exc}",
            hint="start the database or fix storage.url",
        )
    return CheckResult(True, f"{scheme} reachable")


def _claude_code(ctx: PluginContext) -> Provider:
    from hotplex.agent_tools import AGENT_TOOLS
    from hotplex.providers.claude_code import ClaudeCodeProvider

    return ClaudeCodeProvider(ctx.settings.provider, agent_tools=ctx.services.find(AGENT_TOOLS))


def _opencode(ctx: PluginContext) -> Provider:
    from hotplex.agent_tools import AGENT_TOOLS
    from hotplex.providers.opencode import OpenCodeProvider

    return OpenCodeProvider(
        ctx.settings.provider,
        data_dir=ctx.settings.engine.data_dir,
        agent_tools=ctx.services.find(AGENT_TOOLS),
    )


@hookimpl
def hotplex_register_providers() -> list[ProviderSpec]:
    return [
        ProviderSpec(
            name="claude-code",
            factory=_claude_code,
            description="Claude Code CLI in persistent stream-json mode",
            binary="claude",
        ),
        ProviderSpec(
            name="opencode",
            factory=_opencode,
            description="OpenCode over one shared `opencode serve`",
            binary="opencode",
        ),
    ]


@asynccontextmanager
async def run_engine(ctx: PluginContext) -> AsyncIterator[None]:
    """The engine as a start-up resource: the configured provider, events to the sinks."""
    from hotplex.engine import ENGINE, Engine
    from hotplex.errors import ConfigError
    from hotplex.runtime import RUNTIME

    spec = ctx.plugins.providers().get(ctx.settings.provider.type)
    if spec is None:
        known = ", ".join(sorted(ctx.plugins.providers())) or "none"
        raise ConfigError(
            f"provider.type: {ctx.settings.provider.type!r} is not registered "
            f"(registered: {known})",
            path="provider.type",
        )
    from hotplex.services import STORAGE
    from hotplex.storage.sink import STORAGE_SINK

    runtime = ctx.services.find(RUNTIME)
    emit = runtime.emit if runtime is not None else None
    sink = ctx.services.find(STORAGE_SINK)

    async def durable(event: AgentEvent) -> None:
        if sink is not None:
            await sink.committed(event.session_id, event.seq)

    policies = []
    if ctx.settings.security.waf.enabled:
        from hotplex.waf.policy import WafToolPolicy, make_waf

        policies.append(WafToolPolicy(make_waf(ctx), emit))
    async with contextlib.AsyncExitStack() as stack:
        tools = ctx.plugins.agent_tools()
        if tools:  # before the engine, so every agent (spares too) gets the hotplex server
            from hotplex.agent_tools import AGENT_TOOLS, AgentToolBridge

            def resolve(session_id: str) -> tuple[str, str | None] | None:
                # a spare was started under its provider session id; find who took it
                engine = ctx.services.find(ENGINE)
                if engine is None:
                    return None
                session = engine.get(session_id)
                if session is not None:
                    return session.session_id, session.address
                for info in engine.sessions():
                    if info.provider_session_id == session_id:
                        return info.session_id, info.address
                return None

            bridge = AgentToolBridge(tools, ctx, resolve=resolve, audit=emit)
            await stack.enter_async_context(bridge)
            ctx.services.set(AGENT_TOOLS, bridge)
            stack.callback(ctx.services.remove, AGENT_TOOLS)
        engine = await stack.enter_async_context(
            Engine(
                ctx.settings,
                spec.factory(ctx),
                emit=emit,
                policies=policies,
                store=ctx.services.find(STORAGE),
                durable=durable if sink is not None else None,
            )
        )
        ctx.services.set(ENGINE, engine)
        try:
            yield
        finally:
            ctx.services.remove(ENGINE)


@asynccontextmanager
async def run_storage(ctx: PluginContext) -> AsyncIterator[None]:
    """The storage backend for ``storage.url``, opened (migrated) for the daemon's life."""
    from hotplex.runtime import make_storage
    from hotplex.services import STORAGE

    storage = make_storage(ctx)
    await storage.open()
    ctx.services.set(STORAGE, storage)
    try:
        yield
    finally:
        ctx.services.remove(STORAGE)
        await storage.close()


@asynccontextmanager
async def run_sinks(ctx: PluginContext) -> AsyncIterator[None]:
    from hotplex.runtime import RUNTIME

    runtime = ctx.services.find(RUNTIME)
    if runtime is None:
        yield
        return
    async with runtime.running_sinks():
        yield


@hookimpl(tryfirst=True)
def hotplex_startup() -> list[ResourceSpec]:
    # core first, in this order: storage outlives the sinks, the sinks outlive the engine
    # (its last events still reach them), and plugin resources find the engine running
    from hotplex.storage.plugin import retention_resource

    return [
        ResourceSpec("storage", run_storage),
        ResourceSpec("sinks", run_sinks),
        retention_resource(),
        ResourceSpec("engine", run_engine),
    ]


@hookimpl(trylast=True)
def hotplex_register_storage() -> list[StorageSpec]:
    from hotplex.storage.plugin import storage_records

    return storage_records()


@hookimpl
def hotplex_register_sinks() -> list[SinkSpec]:
    from hotplex.storage.plugin import storage_sink_spec

    return [storage_sink_spec()]


@hookimpl
def hotplex_register_middleware() -> list[MiddlewareSpec]:
    from hotplex.inbound import InboundLog
    from hotplex.waf.policy import make_waf_middleware

    return [
        MiddlewareSpec("inbound", InboundLog, order=100),
        MiddlewareSpec("waf", make_waf_middleware, order=300),
    ]


@hookimpl
def hotplex_register_commands() -> list[ChatCommandSpec]:
    from hotplex.chat_commands import CORE_CHAT_COMMANDS

    return list(CORE_CHAT_COMMANDS)


@hookimpl
def hotplex_register_templates() -> list[TemplateSpec]:
    return [TemplateSpec(name="core", package="hotplex.templates")]


@hookimpl
def hotplex_doctor_checks() -> list[DoctorCheck]:
    return [
        DoctorCheck("python", check_python),
        DoctorCheck("provider", check_provider),
        DoctorCheck("credentials", check_credentials),
        DoctorCheck("storage", check_storage),
        DoctorCheck("limits", check_limits),
    ]
