"""``hotplex cron ...``: manage the jobs of a running daemon through ``/admin/v1/cron``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

from hotplex.client import DaemonClient, DaemonError, connection_options

__all__ = ["cron"]

BASE = "/admin/v1/cron/jobs"


def _call(ctx: click.Context, url: str | None, token: str | None, method: str, path: str,
          body: dict[str, Any] | None = None) -> Any:
    client = DaemonClient.from_click(ctx, url, token)
    try:
        return client.request(method, path, body)
    except DaemonError as exc:
        raise click.ClickException(str(exc)) from None


def _job_options(required: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        options = [
            click.option("--schedule", required=required,
                         help="'30 9 * * 1-5', 'every 15m' or 'at 2026-12-24 09:00'."),
            click.option("--prompt", required=required, help="What the agent is asked (Jinja2)."),
            click.option("--tz", "timezone", help="IANA time zone of the schedule (UTC)."),
            click.option("--deliver-to", "deliver_to", multiple=True,
                         help="A conversation address, 'webhook' or 'storage' (repeatable)."),
            click.option("--work-dir", help="Existing absolute directory the agent works in."),
            click.option("--session", type=click.Choice(["fresh", "persistent"])),
            click.option("--timeout", help="Stop a run after this long (e.g. 10m)."),
            click.option("--retries", type=int, help="Tries again after a failed run."),
            click.option("--backoff", help="Wait before the first retry; doubles (e.g. 30s)."),
            click.option("--misfire", type=click.Choice(["skip", "once", "all"]),
                         help="What to do with fire times missed while no daemon ran."),
            click.option("--allow-tool", "allow_tools", multiple=True,
                         help="Policy: run this tool without a person (repeatable)."),
            click.option("--route-to", help="Policy: ask a person in this conversation."),
            click.option("--deny", is_flag=True, help="Policy: deny every tool needing approval."),
        ]
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _values(options: dict[str, Any]) -> dict[str, Any]:
    values = {
        k: v
        for k, v in options.items()
        if k not in ("allow_tools", "route_to", "deny") and v not in (None, ())
    }
    chosen = [bool(options["allow_tools"]), bool(options["route_to"]), options["deny"]]
    if sum(chosen) > 1:
        raise click.UsageError("choose one policy: --deny, --allow-tool or --route-to")
    if options["allow_tools"]:
        values["policy"] = {"allow_tools": list(options["allow_tools"])}
    elif options["route_to"]:
        values["policy"] = {"route_to": options["route_to"]}
    elif options["deny"]:
        values["policy"] = "deny"
    if "deliver_to" in values:
        values["deliver_to"] = list(values["deliver_to"])
    return values


def _show(job: dict[str, Any]) -> None:
    state = "enabled" if job["enabled"] else "paused"
    click.echo(f"{job['name']}: {state}, {job['source']} job, next {job['next_fire'] or '-'}")


@click.group("cron")
def cron() -> None:
    """Scheduled agent tasks of the running daemon."""


@cron.command("add")
@click.argument("name")
@_job_options(required=True)
@click.option("--paused", is_flag=True, help="Add it paused.")
@connection_options
@click.pass_context
def add(ctx: click.Context, /, name: str, paused: bool, url: str | None, token: str | None,
        **options: Any) -> None:
    """Add the job NAME."""
    body = {"name": name, **_values(options)}
    if paused:
        body["enabled"] = False
    _show(_call(ctx, url, token, "POST", f"{BASE}?source=cli", body)["job"])


@cron.command("edit")
@click.argument("name")
@_job_options(required=False)
@connection_options
@click.pass_context
def edit(ctx: click.Context, /, name: str, url: str | None, token: str | None,
         **options: Any) -> None:
    """Change some settings of the job NAME."""
    changes = _values(options)
    if not changes:
        raise click.UsageError("nothing to change: give at least one option")
    _show(_call(ctx, url, token, "PATCH", f"{BASE}/{name}", changes)["job"])


def _simple(verb: str, method: str, suffix: str, doc: str) -> None:
    @cron.command(verb, help=doc)
    @click.argument("name")
    @connection_options
    @click.pass_context
    def command(ctx: click.Context, name: str, url: str | None, token: str | None) -> None:
        answer = _call(ctx, url, token, method, f"{BASE}/{name}{suffix}")
        if "job" in answer:
            _show(answer["job"])
        elif "run_id" in answer:
            click.echo(f"{name}: run {answer['run_id']} started")
        else:
            click.echo(f"{name}: removed")


_simple("remove", "DELETE", "", "Remove the job NAME and its history.")
_simple("pause", "POST", "/pause", "Pause the job NAME (it stays listed).")
_simple("resume", "POST", "/resume", "Resume the job NAME from now on.")
_simple("run", "POST", "/run", "Fire the job NAME now.")


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@cron.command("list")
@connection_options
@click.pass_context
def list_jobs(ctx: click.Context, url: str | None, token: str | None) -> None:
    """The jobs, who owns each, and their next fire time in the job's zone."""
    answer = _call(ctx, url, token, "GET", BASE)
    rows = [["NAME", "SOURCE", "STATE", "SCHEDULE", "ZONE", "NEXT FIRE", "LAST RUN"]]
    for job in answer["jobs"]:
        spec, last = job["job"], job["last_run"]
        rows.append([
            job["name"],
            job["source"],
            "enabled" if job["enabled"] else "paused",
            spec["schedule"],
            spec["timezone"],
            job["next_fire"] or "-",
            f"{last['status']}" if last else "-",
        ])
    _table(rows)
    scheduler = answer["scheduler"]
    click.echo(f"this daemon {'schedules' if scheduler['leader'] else 'does not schedule'}"
               f" (holder {scheduler['holder']})")


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


@cron.command("history")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@connection_options
@click.pass_context
def history(ctx: click.Context, name: str, limit: int, url: str | None,
            token: str | None) -> None:
    """The runs of the job NAME, newest first (times in UTC)."""
    runs = _call(ctx, url, token, "GET", f"{BASE}/{name}/runs?limit={limit}")["runs"]
    rows = [["DUE (UTC)", "TRIGGER", "STATUS", "DURATION", "COST", "OUTPUT", "ERROR"]]
    for run in runs:
        duration = f"{run['duration_ms'] / 1000:.1f}s" if run["duration_ms"] is not None else "-"
        cost = f"${run['cost_usd']:.4f}" if run["cost_usd"] else "-"
        excerpt = " ".join((run["excerpt"] or "").split())[:60] or "-"
        error = run["error"] or ("denied: " + ", ".join(run["denied"]) if run["denied"] else "-")
        rows.append([_when(run["due_at"]), run["trigger"], run["status"], duration, cost,
                     excerpt, error])
    if len(rows) == 1:
        click.echo(f"{name}: no runs yet")
        return
    _table(rows)
