"""Core CLI commands: version, plugins, config validate|show, doctor."""

from __future__ import annotations

import inspect
import json
import sys
from typing import Any

import click
import yaml

from hotplex import __version__
from hotplex.compose import Composition
from hotplex.compose import load_composition as compose_from
from hotplex.config import plugin_enabled
from hotplex.context import PluginContext
from hotplex.errors import HotplexError
from hotplex.plugins import HotplexPluginManager
from hotplex.records import CheckResult

__all__ = ["config_group", "doctor", "plugins_command", "version"]


def _plugins(ctx: click.Context) -> HotplexPluginManager:
    obj = ctx.ensure_object(dict)
    pm = obj.get("plugins")
    if pm is None:
        from hotplex.compose import make_plugins_for

        pm, _ = make_plugins_for(obj.get("config_path"))
        obj["plugins"] = pm
    assert isinstance(pm, HotplexPluginManager)
    return pm


def load_composition(ctx: click.Context) -> Composition:
    """Compose plugins and config, or exit 1 with the config error."""
    obj = ctx.ensure_object(dict)
    try:
        composition = compose_from(obj.get("config_path"), plugins=_plugins(ctx))
    except HotplexError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    for warning in composition.config.warnings:
        click.echo(f"warning: {warning}", err=True)
    return composition


@click.command()
def version() -> None:
    """Print the HotPlex version."""
    click.echo(f"hotplex {__version__}")


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def plugins_command(ctx: click.Context, as_json: bool) -> None:
    """List plugins: name, version, source, hooks, and whether they are available."""
    pm = _plugins(ctx)
    rows = pm.plugins()
    if as_json:
        click.echo(json.dumps([row.__dict__ for row in rows], indent=2))
        return
    click.echo(f"{'NAME':<10} {'VERSION':<9} {'SOURCE':<12} {'STATUS':<12} HOOKS")
    for row in rows:
        status = ("available" if row.available else "unavailable") if row.loaded else "off"
        hooks = ", ".join(h.removeprefix("hotplex_") for h in row.hooks) or "-"
        click.echo(f"{row.name:<10} {row.version or '-':<9} {row.source:<12} {status:<12} {hooks}")
        if row.reason:
            click.echo(f"{'':<10} ↳ {row.reason}")


@click.group("config")
def config_group() -> None:
    """Validate or show the configuration."""


@config_group.command("validate")
@click.pass_context
def config_validate(ctx: click.Context) -> None:
    """Validate the config file; exit 1 naming the key path of every problem."""
    composition = load_composition(ctx)
    source = composition.config.source or "embedded defaults"
    click.echo(f"ok: {source}")


@config_group.command("show")
@click.pass_context
def config_show(ctx: click.Context) -> None:
    """Print the merged config with defaults filled in and secrets redacted."""
    settings = load_composition(ctx).config.settings
    data: dict[str, Any] = settings.model_dump(mode="json", exclude={"plugins"})
    data["plugins"] = {
        name: section.model_dump(mode="json") for name, section in settings.plugins.items()
    }
    click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)


def _run_check(run: Any, pctx: PluginContext) -> CheckResult:
    import asyncio

    try:
        result = run(pctx)
        if inspect.isawaitable(result):
            result = asyncio.run(asyncio.wait_for(result, timeout=30))
    except Exception as exc:
        return CheckResult(False, f"check crashed: {type(exc).__name__}: {exc}")
    if not isinstance(result, CheckResult):
        return CheckResult(False, f"check returned {type(result).__name__}, not CheckResult")
    return result


def _line(name: str, result: CheckResult) -> None:
    label = "ok  " if result.ok and not result.warning else ("warn" if result.ok else "FAIL")
    color = {"ok  ": "green", "warn": "yellow", "FAIL": "red"}[label]
    click.echo(f"{click.style(label, fg=color)}  {name:<22} {result.detail}")
    if result.hint and (label != "ok  "):
        click.echo(f"      {'':<22} fix: {result.hint}")


@click.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check the installation: a line per check; exit 1 if any fails."""
    pm = _plugins(ctx)
    obj = ctx.ensure_object(dict)
    try:
        composition = compose_from(obj.get("config_path"), plugins=pm)
    except HotplexError as exc:
        _line("config", CheckResult(False, str(exc), hint="fix the file, then rerun"))
        sys.exit(1)
    source = composition.config.source or "embedded defaults (no config file)"
    _line("config", CheckResult(True, str(source)))
    for warning in composition.config.warnings:
        _line("config", CheckResult(True, warning, warning=True))
    failed = False
    settings = composition.config.settings
    for info in pm.plugins():
        if info.loaded and not info.available:
            enabled = plugin_enabled(settings, info.name, disabled=pm.disabled)
            result = CheckResult(
                not enabled,
                f"plugin unavailable: {info.reason}",
                hint=info.fix,
                warning=not enabled,
            )
            _line(f"plugin {info.name}", result)
            failed |= not result.ok
    pctx = PluginContext(settings=settings, plugins=pm.switched_on(settings))
    try:
        checks = pctx.plugins.doctor_checks()
    except HotplexError as exc:
        _line("plugins", CheckResult(False, str(exc)))
        sys.exit(1)
    for plugin, check in checks:
        name = check.name if plugin == "core" else f"{plugin}: {check.name}"
        result = _run_check(check.run, pctx)
        _line(name, result)
        failed |= not result.ok
    sys.exit(1 if failed else 0)
