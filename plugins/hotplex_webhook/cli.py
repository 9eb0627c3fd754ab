"""``hotplex webhook list|test|redeliver|dead``: the running daemon's subscriptions through
its admin routes (``/admin/v1/webhooks/...``, the admin token). Imports no aiohttp, so the
CLI stays fast to start."""

from __future__ import annotations

from typing import Any

import click

from hotplex.client import DaemonClient, DaemonError, connection_options

__all__ = ["webhook_cli"]

PREFIX = "/admin/v1/webhooks"


def _call(
    ctx: click.Context, url: str | None, token: str | None, method: str, path: str, body: Any = None
) -> Any:
    client = DaemonClient.from_click(ctx, url, token)
    try:
        return client.request(method, path, body)
    except DaemonError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("webhook")
def webhook_cli() -> None:
    """Outbound webhook subscriptions: health, dead letters, redelivery."""


@webhook_cli.command("list")
@connection_options
@click.pass_context
def list_cmd(ctx: click.Context, url: str | None, token: str | None) -> None:
    """Subscriptions with their health, and the inbound triggers."""
    answer = _call(ctx, url, token, "GET", PREFIX)
    for sub in answer["subscriptions"]:
        state = f"disabled ({sub['disabled']})" if sub["disabled"] else "enabled"
        click.echo(
            f"{sub['name']}  {sub['url']}  {state}  pending={sub['pending']} "
            f"dead={sub['dead']} delivered={sub['delivered']} failed={sub['failed']}"
            + (f"  last error: {sub['last_error']}" if sub["last_error"] else "")
        )
    for trigger in answer["triggers"]:
        click.echo(
            f"trigger {trigger['name']}  scheme={trigger['scheme']}  -> {trigger['deliver_to']}"
        )


@webhook_cli.command("dead")
@click.argument("name", required=False)
@connection_options
@click.pass_context
def dead_cmd(ctx: click.Context, name: str | None, url: str | None, token: str | None) -> None:
    """Dead letters (of one subscription, or all)."""
    path = f"{PREFIX}/dead" + (f"?subscription={name}" if name else "")
    for row in _call(ctx, url, token, "GET", path)["dead"]:
        click.echo(
            f"{row['id']}  {row['subscription']}  {row['event_id']}  {row['type']}  "
            f"attempts={row['attempts']}  {row['last_error']}"
        )


@webhook_cli.command("redeliver")
@click.argument("name")
@click.argument("ids", nargs=-1, type=int)
@connection_options
@click.pass_context
def redeliver_cmd(
    ctx: click.Context, name: str, ids: tuple[int, ...], url: str | None, token: str | None
) -> None:
    """Send a subscription's dead letters again (all, or the given ids); enables it."""
    body = {"ids": list(ids)} if ids else {}
    answer = _call(ctx, url, token, "POST", f"{PREFIX}/{name}/redeliver", body)
    click.echo(f"{answer['redelivered']} deliveries of {name} are due again")


@webhook_cli.command("test")
@click.argument("name")
@connection_options
@click.pass_context
def test_cmd(ctx: click.Context, name: str, url: str | None, token: str | None) -> None:
    """Send a signed webhook.test message to a subscription now."""
    answer = _call(ctx, url, token, "POST", f"{PREFIX}/{name}/test")
    if answer["verdict"] != "delivered":
        raise click.ClickException(f"{name}: {answer['error']}")
    click.echo(f"{name}: delivered (HTTP {answer['status']})")
