"""``hotplex serve``: run the daemon (gateway, engine, plugins) until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import sys
from collections.abc import Sequence
from typing import Any

import click

from hotplex.cli.core_commands import load_composition
from hotplex.config import Settings
from hotplex.errors import ConfigError, HotplexError

__all__ = ["serve"]

SHUTDOWN_TIMEOUT = 10.0


def check_bind(settings: Settings) -> None:
    """Binding beyond loopback without an API key would expose the agents to the network."""
    host = settings.server.host
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not settings.server.api_keys:
        raise ConfigError(
            f"server.host is {host!r} but server.api_keys is empty: refusing to expose the "
            "agents without authentication. Add an API key or bind to 127.0.0.1.",
            path="server.host",
        )


def browser_url(address: Sequence[Any]) -> str:
    """The URL a person opens for a bound address (any-address binds mean this machine)."""
    host, port = str(address[0]), address[1]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


async def _greet(settings: Settings, plugins: object, addresses: Sequence[Any]) -> None:
    """Where to open the web chat, and what keeps the agent from starting, if anything."""
    from hotplex.context import PluginContext
    from hotplex.plugins import HotplexPluginManager
    from hotplex.web import setup_lines, setup_report

    assert isinstance(plugins, HotplexPluginManager)
    if addresses:
        click.echo(f"hotplex: open {browser_url(addresses[0])} in a browser for the web chat")
    ctx = PluginContext(settings=settings, plugins=plugins.switched_on(settings))
    report = await asyncio.to_thread(setup_report, ctx)
    for line in setup_lines(report):
        click.echo(f"hotplex: {line}")


async def _serve(settings: Settings, plugins: object) -> None:
    from aiohttp import web

    from hotplex.compose import compose
    from hotplex.gateway import build_app
    from hotplex.plugins import HotplexPluginManager

    assert isinstance(plugins, HotplexPluginManager)
    app = build_app(compose(settings, plugins))
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()  # enters the runtime: sinks, engine, plugins
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, settings.server.host, settings.server.port)
        await site.start()
        for address in runner.addresses:
            host, port = address[0], address[1]
            click.echo(f"hotplex: serving on http://{host}:{port}/ (Ctrl-C to stop)")
        await _greet(settings, plugins, runner.addresses)
        await stop.wait()
        click.echo("hotplex: shutting down")
    finally:
        try:
            await asyncio.wait_for(runner.cleanup(), SHUTDOWN_TIMEOUT)
        except TimeoutError:
            click.echo("hotplex: shutdown took too long; exiting", err=True)


@click.command()
@click.option("--host", help="Bind address (overrides server.host).")
@click.option("--port", type=int, help="Port (overrides server.port; 0 picks a free one).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run HotPlex: the gateway, the agent engine and every enabled plugin."""
    composition = load_composition(ctx)
    settings = composition.config.settings
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if overrides:
        server = settings.server.model_copy(update=overrides)
        settings = settings.model_copy(update={"server": server})
    try:
        check_bind(settings)
        asyncio.run(_serve(settings, composition.plugins))
    except HotplexError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
