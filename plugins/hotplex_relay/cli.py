"""``hotplex relay ...``: ask a peer from the terminal, and manage bindings.

``send`` talks to the peer directly, signed with the secret in this instance's config (no
daemon needed on this side: the peer's answer streams to the terminal as it comes; the
rate limit and breaker are the command's own). ``list``, ``bind`` and ``unbind`` go through
the running daemon's admin API (``/admin/v1/relay/...``), since it holds the bindings the
mirror uses.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from typing import Any

import click

from hotplex import HotplexError
from hotplex.client import DaemonClient, DaemonError, connection_options

__all__ = ["relay_group"]


@click.group("relay")
def relay_group() -> None:
    """Ask other bots (relay peers) and bind conversations."""


def _settings(ctx: click.Context) -> Any:
    from hotplex.compose import load_composition
    from hotplex_relay.plugin import RelaySettings

    obj = ctx.ensure_object(dict)
    try:
        composition = load_composition(obj.get("config_path"), plugins=obj.get("plugins"))
    except HotplexError as exc:
        raise click.ClickException(str(exc)) from None
    settings = composition.config.settings.plugins.get("relay")
    if not isinstance(settings, RelaySettings) or not settings.peers:
        raise click.ClickException("no relay peers configured (plugins.relay.peers)")
    return settings


@relay_group.command("send")
@click.argument("peer")
@click.argument("prompt")
@click.pass_context
def send(ctx: click.Context, peer: str, prompt: str) -> None:
    """Ask PEER and stream its answer; exit 1 when it is incomplete or refused."""
    settings = _settings(ctx)
    try:
        complete = asyncio.run(_send(settings, peer, prompt))
    except HotplexError as exc:
        raise click.ClickException(str(exc)) from None
    if not complete:
        sys.exit(1)


async def _send(settings: Any, target: str, prompt: str) -> bool:
    from hotplex_relay.client import RelayClient
    from hotplex_relay.guard import Hop
    from hotplex_relay.wire import Reception

    client = RelayClient(settings)
    reception = Reception(target)
    chain = (Hop(settings.name, f"cli:{getpass.getuser()}"),)
    shown = ""  # what the terminal shows of the block being streamed
    try:
        async for event in client.stream(target, prompt, chain, reception):
            if event.type == "text_delta":
                shown += event.data["text"]
                click.echo(event.data["text"], nl=False)
            elif event.type == "text":
                text = str(event.data["text"])
                click.echo(text[len(shown) :] if text.startswith(shown) else f"\n{text}", nl=False)
                click.echo("\n")
                shown = ""
            elif event.type == "status":
                click.echo(f"[{event.data['text']}]", err=True)
    finally:
        await client.aclose()
    answer = reception.answer
    if not answer.complete:
        click.echo(f"incomplete: {answer.error}", err=True)
    return answer.complete


def _client(ctx: click.Context, url: str | None, token: str | None) -> DaemonClient:
    return DaemonClient.from_click(ctx, url, token)


def _call(ctx: click.Context, url: str | None, token: str | None, *args: Any) -> Any:
    try:
        return _client(ctx, url, token).request(*args)
    except DaemonError as exc:
        raise click.ClickException(str(exc)) from None


@relay_group.command("list")
@connection_options
@click.pass_context
def list_(ctx: click.Context, url: str | None, token: str | None) -> None:
    """The bindings and the peers' health (of the running daemon)."""
    peers = _call(ctx, url, token, "GET", "/admin/v1/relay/peers")
    bindings = _call(ctx, url, token, "GET", "/admin/v1/relay/bindings")["bindings"]
    click.echo(f"this instance: {peers['name']} (hop_limit {peers['hop_limit']})")
    for peer in peers["peers"]:
        breaker = peer["breaker"]
        error = f", last error: {breaker['last_error']}" if breaker["last_error"] else ""
        click.echo(f"peer {peer['name']}  {peer['url']}  breaker {breaker['state']}{error}")
    if not bindings:
        click.echo("no bindings")
    for binding in bindings:
        click.echo(f"bound {binding['left']} <-> {binding['right']}")


@relay_group.command("bind")
@click.argument("a")
@click.argument("b")
@connection_options
@click.pass_context
def bind(ctx: click.Context, a: str, b: str, url: str | None, token: str | None) -> None:
    """Bind the conversations A and B (addresses, e.g. slack:T01/C02 web:alice/s1; a
    peer's conversation as PEER@ADDRESS, which that peer binds on its side too)."""
    binding = _call(ctx, url, token, "POST", "/admin/v1/relay/bindings", {"a": a, "b": b})
    click.echo(f"bound {binding['left']} <-> {binding['right']}")


@relay_group.command("unbind")
@click.argument("a")
@click.argument("b")
@connection_options
@click.pass_context
def unbind(ctx: click.Context, a: str, b: str, url: str | None, token: str | None) -> None:
    """Remove the binding of A and B."""
    from urllib.parse import urlencode

    path = "/admin/v1/relay/bindings?" + urlencode({"a": a, "b": b})
    removed = _call(ctx, url, token, "DELETE", path)["removed"]
    click.echo("unbound" if removed else "no such binding")
