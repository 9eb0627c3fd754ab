"""``hotplex doctor`` for Slack: the bot token (``auth.test``), the scopes it was granted
(``X-OAuth-Scopes``) and the connection (Socket Mode's ``apps.connections.open`` with the
app token; HTTP mode's signing secret). Each call has the adapter's timeout."""

from __future__ import annotations

import asyncio
from typing import Any

from hotplex.context import PluginContext
from hotplex.records import CheckResult, DoctorCheck
from hotplex_slack.api import error_code, make_client
from hotplex_slack.settings import SlackSettings

__all__ = ["CHECKS", "REQUIRED_SCOPES"]

#: What the manifest (configs/slack-app-manifest.yaml) asks for and the adapter uses.
REQUIRED_SCOPES = frozenset(
    {
        "app_mentions:read",
        "channels:history",
        "groups:history",
        "im:history",
        "mpim:history",
        "chat:write",
        "commands",
        "files:read",
        "files:write",
        "reactions:write",
    }
)


def _settings(ctx: PluginContext) -> SlackSettings | None:
    section = ctx.settings.plugins.get("slack")
    if isinstance(section, SlackSettings) and section.enabled:
        return section
    return None


def _off() -> CheckResult:
    return CheckResult(True, "slack: not enabled (plugins.slack.enabled)")


def _header(response: Any, name: str) -> str:
    for key, value in dict(getattr(response, "headers", None) or {}).items():
        if str(key).lower() == name:
            return str(value[0] if isinstance(value, list | tuple) else value)
    return ""


async def _auth_test(settings: SlackSettings) -> Any:
    token = settings.bot_token.get_secret_value() if settings.bot_token else ""
    client = make_client(token, base_url=settings.api_base_url, timeout=settings.timeout)
    return await asyncio.wait_for(client.auth_test(), settings.timeout)


async def check_token(ctx: PluginContext) -> CheckResult:
    settings = _settings(ctx)
    if settings is None:
        return _off()
    try:
        data = await _auth_test(settings)
    except Exception as exc:
        return CheckResult(
            False,
            f"slack: auth.test failed ({error_code(exc) or type(exc).__name__})",
            hint="check plugins.slack.bot_token (xoxb-...) and api_base_url",
        )
    return CheckResult(
        True,
        f"slack: bot {data.get('user')} ({data.get('user_id')}) in "
        f"team {data.get('team')} ({data.get('team_id')})",
    )


async def check_scopes(ctx: PluginContext) -> CheckResult:
    settings = _settings(ctx)
    if settings is None:
        return _off()
    try:
        response = await _auth_test(settings)
    except Exception as exc:
        return CheckResult(False, f"slack: scopes unknown ({error_code(exc) or exc})")
    granted = {s.strip() for s in _header(response, "x-oauth-scopes").split(",") if s.strip()}
    missing = sorted(REQUIRED_SCOPES - granted)
    if missing:
        return CheckResult(
            False,
            f"slack: the bot token lacks the scopes {', '.join(missing)}",
            hint="add them (configs/slack-app-manifest.yaml has them all) and reinstall the app",
        )
    return CheckResult(True, f"slack: {len(granted)} scopes granted, none missing")


async def check_connection(ctx: PluginContext) -> CheckResult:
    settings = _settings(ctx)
    if settings is None:
        return _off()
    if settings.mode == "http":
        return CheckResult(True, "slack: HTTP mode; Slack must reach <server>/slack/events")
    token = settings.app_token.get_secret_value() if settings.app_token else ""
    client = make_client(token, base_url=settings.api_base_url, timeout=settings.timeout)
    try:
        data = await asyncio.wait_for(
            client.apps_connections_open(app_token=token), settings.timeout
        )
    except Exception as exc:
        return CheckResult(
            False,
            f"slack: Socket Mode refused ({error_code(exc) or type(exc).__name__})",
            hint="check plugins.slack.app_token (xapp-..., scope connections:write) and that "
            "Socket Mode is on in the app's settings",
        )
    return CheckResult(True, f"slack: Socket Mode open ({str(data.get('url', ''))[:40]}…)")


CHECKS = (
    DoctorCheck("slack token", check_token),
    DoctorCheck("slack scopes", check_scopes),
    DoctorCheck("slack connection", check_connection),
)
