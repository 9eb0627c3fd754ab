"""Client commands that talk to a running daemon through its admin API: ``status`` and
``sessions list|show|kill|logs``, through the public :class:`~hotplex.client.DaemonClient`.

The daemon is found from ``--url``/``--token``, else ``HOTPLEX_URL``/``HOTPLEX_TOKEN``, else
the config (``server.host``/``server.port`` and ``server.admin_token``). Every request has a
timeout; a daemon that cannot be reached is one clear line and exit 1.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar

import click

from hotplex.client import DaemonClient, DaemonError, connection_options

__all__ = ["sessions_group", "status"]

PAGE = 500
F = TypeVar("F", bound=Callable[..., Any])


def _daemon(ctx: click.Context, url: str | None, token: str | None) -> DaemonClient:
    try:
        return DaemonClient.from_click(ctx, url, token)
    except DaemonError as exc:
        _fail(str(exc))


def _fail(message: str) -> NoReturn:
    click.echo(f"hotplex: {message}", err=True)
    sys.exit(1)


def _connection_options(command: F) -> F:
    command = connection_options(command)
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(command)


def _call(ctx: click.Context, url: str | None, token: str | None, method: str, path: str) -> Any:
    return _request(_daemon(ctx, url, token), method, path)


def _request(daemon: DaemonClient, method: str, path: str) -> Any:
    try:
        return daemon.request(method, path)
    except DaemonError as exc:
        _fail(str(exc))


def _dump(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True))


# -- status ------------------------------------------------------------------------------


@click.command()
@_connection_options
@click.pass_context
def status(ctx: click.Context, as_json: bool, url: str | None, token: str | None) -> None:
    """Whether the daemon runs, its version, sessions and totals."""
    daemon = _daemon(ctx, url, token)
    stats = _request(daemon, "GET", "/admin/v1/stats")
    if as_json:
        _dump(stats)
        return
    by_state = ", ".join(f"{n} {s}" for s, n in sorted(stats["sessions_by_state"].items()))
    lines = [
        ("daemon", f"running at {daemon.url}"),
        ("version", stats["version"]),
        ("uptime", _duration(stats["uptime_seconds"])),
        ("sessions", f"{stats['sessions']} ({by_state})"),
        ("processes", f"{stats['live_processes']} of {stats['max_sessions']}"),
        ("approvals", f"{stats['pending_approvals']} pending"),
        ("turns", str(stats["turns"])),
        ("tokens", f"{stats['input_tokens']} in, {stats['output_tokens']} out"),
        ("cost", f"${stats['cost_usd']:.4f}"),
        ("limits", stats["limit_backend"]),
        ("storage", stats["storage"] or "none"),
    ]
    for name, state in sorted(stats.get("adapters", {}).items()):
        lines.append((f"adapter {name}", state))
    width = max(len(n) for n, _ in lines)
    for name, text in lines:
        click.echo(f"{name:<{width}}  {text}")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


# -- sessions ----------------------------------------------------------------------------


@click.group("sessions")
def sessions_group() -> None:
    """List, inspect, kill and read the logs of the daemon's sessions."""


@sessions_group.command("list")
@_connection_options
@click.pass_context
def sessions_list(ctx: click.Context, as_json: bool, url: str | None, token: str | None) -> None:
    """A table of the sessions."""
    body = _call(ctx, url, token, "GET", "/admin/v1/sessions")
    if as_json:
        _dump(body)
        return
    rows = [
        [
            s["session_id"],
            s["address"],
            s["state"],
            _duration(s["idle_seconds"]),
            str(s["turns"]),
            f"{s['input_tokens']}/{s['output_tokens']}",
            f"${s['cost_usd']:.4f}",
            str(s["pid"] or "-"),
            str(s["queued"]),
        ]
        for s in body["sessions"]
    ]
    if not rows:
        click.echo("no sessions")
        return
    header = ["SESSION", "ADDRESS", "STATE", "IDLE", "TURNS", "TOKENS", "COST", "PID", "QUEUED"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@sessions_group.command("show")
@click.argument("session_id")
@_connection_options
@click.pass_context
def sessions_show(
    ctx: click.Context, session_id: str, as_json: bool, url: str | None, token: str | None
) -> None:
    """One session in detail, with its pending approvals."""
    body = _call(ctx, url, token, "GET", f"/admin/v1/sessions/{_quote(session_id)}")
    if as_json:
        _dump(body)
        return
    pending = body.pop("pending_approvals", [])
    width = max(len(k) for k in body)
    for key in sorted(body):
        click.echo(f"{key:<{width}}  {body[key] if body[key] is not None else '-'}")
    click.echo(f"pending approvals: {len(pending)}")
    for p in pending:
        click.echo(f"  {p['permission_id']}  {p['kind']}  {p['tool']}  {json.dumps(p['input'])}")


@sessions_group.command("kill")
@click.argument("session_id")
@_connection_options
@click.pass_context
def sessions_kill(
    ctx: click.Context, session_id: str, as_json: bool, url: str | None, token: str | None
) -> None:
    """Kill the session's agent process group (its next message resumes it)."""
    body = _call(ctx, url, token, "DELETE", f"/admin/v1/sessions/{_quote(session_id)}")
    if as_json:
        _dump(body)
    else:
        click.echo(f"killed {session_id}")


@sessions_group.command("logs")
@click.argument("session_id")
@click.option("--since", "since", type=click.IntRange(min=0), default=0, help="After this seq.")
@click.option("--follow", "-f", is_flag=True, help="Keep polling for new events (Ctrl-C ends).")
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 60.0),
    default=1.0,
    show_default=True,
    help="Seconds between polls with --follow.",
)
@_connection_options
@click.pass_context
def sessions_logs(
    ctx: click.Context,
    session_id: str,
    since: int,
    follow: bool,
    interval: float,
    as_json: bool,
    url: str | None,
    token: str | None,
) -> None:
    """The session's stored events, one per line (``--json``: one JSON object per line)."""
    daemon = _daemon(ctx, url, token)
    try:
        for event in _events(daemon, session_id, since, follow, interval):
            click.echo(json.dumps(event) if as_json else _event_line(event))
    except DaemonError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        pass


def _events(
    daemon: DaemonClient, session_id: str, since: int, follow: bool, interval: float
) -> Iterator[dict[str, Any]]:
    path = f"/admin/v1/sessions/{_quote(session_id)}/events"
    while True:
        page = daemon.request("GET", f"{path}?since_seq={since}&limit={PAGE}")
        yield from page["events"]
        since = page["next_since_seq"]
        if page["more"]:
            continue
        if not follow:
            return
        time.sleep(interval)


def _event_line(event: dict[str, Any]) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(event.get("ts", 0)))
    data = event.get("data", {})
    kind = event.get("type", "?")
    if kind in {"text", "text_delta", "thinking", "status"}:
        detail = json.dumps(data.get("text", ""))
    elif kind == "tool_use":
        detail = f"{data.get('name')} {json.dumps(data.get('input'))}"
    elif kind == "tool_result":
        detail = f"{'error ' if data.get('is_error') else ''}{_short(data.get('output'))}"
    elif kind == "done":
        detail = f"{data.get('status')} in {data.get('duration_ms')} ms"
    elif kind == "usage":
        detail = f"{data.get('input_tokens')} in, {data.get('output_tokens')} out"
    elif kind == "error":
        detail = f"{data.get('code')}: {data.get('message')}"
    else:
        detail = json.dumps(data, sort_keys=True)
    return f"{event.get('seq', ''):>6}  {stamp}  {kind:<18}  {_short(detail)}"


def _short(value: Any, width: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")
