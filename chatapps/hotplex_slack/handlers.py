"""The listeners of the Bolt app, the same for Socket Mode and HTTP mode.

Bolt acknowledges an event before its listener runs (``process_before_response`` off);
buttons, the deny modal and the slash command call ``ack()`` first. The work after it
(dispatching, deciding, answering) never holds up the acknowledgement Slack waits 3 s for.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from hotplex import Address
from hotplex.errors import NotAuthorizedError
from hotplex.types import IncomingMessage
from hotplex_slack.cards import (
    ALLOW_ONCE,
    ALLOW_SESSION,
    DENY,
    DENY_REASON_VIEW,
    deny_modal,
    reason_of,
)

if TYPE_CHECKING:
    from hotplex_slack.adapter import SlackAdapter

__all__ = ["register"]

log = logging.getLogger(__name__)
Ack = Callable[..., Awaitable[Any]]


def register(app: Any, adapter: SlackAdapter) -> None:
    """Add the adapter's listeners to the Bolt ``app``."""

    async def on_message(body: dict[str, Any]) -> None:
        await adapter.on_event(body)

    async def on_other(body: dict[str, Any]) -> None:
        """Events the bot subscribes to but does not act on; acknowledged, so that
        Slack does not send them again."""

    async def on_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        await _pressed(adapter, body, action)

    async def on_deny_reason(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        await ack()
        metadata, reason = reason_of(view)
        permission_id = str(metadata.get("permission_id") or "")
        user = str(body.get("user", {}).get("id") or "")
        if permission_id and user:
            await _decide(adapter, permission_id, "deny", user, "once", reason)

    async def on_command(ack: Ack, command: dict[str, Any]) -> None:
        await ack()
        await adapter.on_command(command)

    app.event("message")(on_message)
    app.event("app_mention")(on_message)
    app.action(re.compile(f"^({ALLOW_ONCE}|{ALLOW_SESSION}|{DENY})$"))(on_button)
    app.view(DENY_REASON_VIEW)(on_deny_reason)
    app.command("/hotplex")(on_command)
    app.event(re.compile(".*"))(on_other)


async def _pressed(
    adapter: SlackAdapter, body: Mapping[str, Any], action: Mapping[str, Any]
) -> None:
    permission_id = str(action.get("value") or "")
    user = str(body.get("user", {}).get("id") or "")
    if not permission_id or not user:
        return
    action_id = action.get("action_id")
    if action_id == DENY:
        container = body.get("container") or {}
        card = {
            "channel": str(container.get("channel_id") or ""),
            "ts": str(container.get("message_ts") or ""),
        }
        try:  # the reason's modal; the trigger lives 3 s, so open it first
            await adapter.operations.client.views_open(
                trigger_id=body.get("trigger_id"), view=deny_modal(permission_id, card)
            )
            return
        except Exception as exc:
            log.warning("the deny reason modal did not open (%s); denied without one", exc)
        await _decide(adapter, permission_id, "deny", user, "once", None)
        return
    scope = "session" if action_id == ALLOW_SESSION else "once"
    await _decide(adapter, permission_id, "allow", user, scope, None)


async def _decide(
    adapter: SlackAdapter,
    permission_id: str,
    decision: Literal["allow", "deny"],
    user: str,
    scope: str,
    reason: str | None,
) -> None:
    with contextlib.suppress(NotAuthorizedError):  # core told the presser, only them
        try:
            await adapter.bridge().decide(
                permission_id, decision, by=f"slack:{user}", scope=scope, reason=reason
            )
        except NotAuthorizedError:
            raise
        except Exception:
            log.exception("deciding %s failed", permission_id)


def slash_message(command: Mapping[str, Any], team: str) -> IncomingMessage:
    """``/hotplex <args>`` as the chat command core answers (addressed to the bot)."""
    channel = str(command.get("channel_id") or "")
    address = str(Address("slack", str(command.get("team_id") or team), channel))
    return IncomingMessage(
        address=address,
        text=f"/hotplex {command.get('text') or ''}".strip(),
        user=f"slack:{command.get('user_id')}",
        platform="slack",
        direct=channel.startswith("D"),
        mentions_bot=True,
        display_name=str(command.get("user_name") or "") or None,
    )
