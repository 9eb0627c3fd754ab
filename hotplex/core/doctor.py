"""Core's doctor checks: Python, the provider's executable, credentials, storage, limits.

``hotplex doctor`` runs them (``hotplex_doctor_checks``); the web chat's setup report and
``hotplex serve`` reuse the provider and credentials checks.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from hotplex.binaries import PINNED_VERSIONS, binary_version, find_binary
from hotplex.context import PluginContext
from hotplex.records import CheckResult, DoctorCheck

__all__ = [
    "CORE_CHECKS",
    "check_credentials",
    "check_data_dir",
    "check_limits",
    "check_provider",
    "check_python",
    "check_storage",
]


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
    if not ctx.settings.storage.enabled:
        return CheckResult(
            True,
            "storage is off (storage.enabled: false): nothing survives a restart",
            warning=True,
        )
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


CORE_CHECKS = (
    DoctorCheck("python", check_python),
    DoctorCheck("provider", check_provider),
    DoctorCheck("credentials", check_credentials),
    DoctorCheck("storage", check_storage),
    DoctorCheck("limits", check_limits),
)
