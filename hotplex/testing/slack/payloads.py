"""The payloads Slack sends an app: Events API callbacks, interactivity, slash commands.

Shapes follow Slack's samples (java-slack-sdk, bolt-python tests) with the fields adapters read.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from hotplex.testing.slack.records import JSON, Channel, Message, View
from hotplex.testing.slack.state import SlackState


def rich_text(text: str) -> list[JSON]:
    return [
        {
            "type": "rich_text",
            "block_id": uuid.uuid4().hex[:5],
            "elements": [
                {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
            ],
        }
    ]


def message_event(
    state: SlackState, channel: Channel, message: Message, *, kind: str = "message"
) -> JSON:
    """A ``message`` (or ``app_mention``) event for a user's message as stored."""
    event: JSON = {
        "type": kind,
        "user": message.user,
        "text": message.text,
        "ts": message.ts,
        "event_ts": message.ts,
        "channel": channel.id,
        "team": state.team_id,
        "blocks": rich_text(message.text),
    }
    if message.client_msg_id is not None:
        event["client_msg_id"] = message.client_msg_id
    if kind == "message":
        event["channel_type"] = channel.channel_type
    if message.thread_ts is not None and message.thread_ts != message.ts:
        event["thread_ts"] = message.thread_ts
        parent = next(
            (m for m in state.history.get(channel.id, []) if m.ts == message.thread_ts), None
        )
        if parent is not None and parent.user is not None:
            event["parent_user_id"] = parent.user
    if message.files:
        event["files"] = message.files
        event["upload"] = False
        if kind == "message":
            event["subtype"] = "file_share"
    return event


def event_callback(state: SlackState, event: JSON, *, event_id: str | None = None) -> JSON:
    """The Events API envelope around ``event`` (``type: event_callback``)."""
    return {
        "token": "fake-verification-token",
        "team_id": state.team_id,
        "context_team_id": state.team_id,
        "api_app_id": state.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or state.new_id("Ev"),
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": state.team_id,
                "user_id": state.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{uuid.uuid4().hex}",
    }


def _user_ref(state: SlackState, user_id: str) -> JSON:
    user = state.users.get(user_id)
    name = user.name if user is not None else user_id
    return {"id": user_id, "username": name, "name": name, "team_id": state.team_id}


def _team(state: SlackState) -> JSON:
    return {"id": state.team_id, "domain": "hotplex-test"}


def response_url(state: SlackState, url_id: str) -> str:
    return f"{state.settings.public_url}/response/{url_id}"


def block_actions(
    state: SlackState,
    message: Message,
    action: JSON,
    *,
    user: str,
    trigger_id: str,
    url_id: str,
) -> JSON:
    """A button click on ``message`` (``action`` is the clicked element plus ``block_id``)."""
    channel = state.channels[message.channel]
    return {
        "type": "block_actions",
        "user": _user_ref(state, user),
        "api_app_id": state.app_id,
        "token": "fake-verification-token",
        "container": {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": channel.id,
            "is_ephemeral": False,
            **({"thread_ts": message.thread_ts} if message.thread_ts else {}),
        },
        "trigger_id": trigger_id,
        "team": _team(state),
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel.id, "name": channel.name},
        "message": message.as_json(),
        "state": {"values": {}},
        "response_url": response_url(state, url_id),
        "actions": [{**action, "action_ts": f"{time.time():.6f}"}],
    }


def find_action(blocks: Sequence[JSON] | None, action_id: str) -> JSON | None:
    """The interactive element ``action_id`` in ``blocks``, with its ``block_id``."""
    for block in blocks or ():
        for element in block.get("elements", ()) if isinstance(block, dict) else ():
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return {**element, "block_id": block.get("block_id", "")}
        accessory = block.get("accessory") if isinstance(block, dict) else None
        if isinstance(accessory, dict) and accessory.get("action_id") == action_id:
            return {**accessory, "block_id": block.get("block_id", "")}
    return None


def input_values(view: View, values: dict[str, dict[str, str]]) -> JSON:
    """``state.values`` of a submitted modal from ``{block_id: {action_id: text}}``."""
    kinds = {}
    for block in view.view.get("blocks", []):
        element = block.get("element") if isinstance(block, dict) else None
        if isinstance(element, dict):
            kinds[(block.get("block_id"), element.get("action_id"))] = element.get(
                "type", "plain_text_input"
            )
    return {
        block_id: {
            action_id: {
                "type": kinds.get((block_id, action_id), "plain_text_input"),
                "value": value,
            }
            for action_id, value in actions.items()
        }
        for block_id, actions in values.items()
    }


def view_submission(
    state: SlackState, view: View, *, user: str, values: JSON, trigger_id: str
) -> JSON:
    return {
        "type": "view_submission",
        "team": _team(state),
        "user": _user_ref(state, user),
        "api_app_id": state.app_id,
        "token": "fake-verification-token",
        "trigger_id": trigger_id,
        "view": {
            **view.view,
            "id": view.id,
            "team_id": state.team_id,
            "app_id": state.app_id,
            "bot_id": state.bot_id,
            "callback_id": view.view.get("callback_id", ""),
            "private_metadata": view.view.get("private_metadata", ""),
            "state": {"values": values},
            "hash": f"{view.submissions}.{view.id}",
            "root_view_id": view.id,
            "previous_view_id": None,
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def slash_command(
    state: SlackState,
    command: str,
    text: str,
    *,
    user: str,
    channel: Channel,
    trigger_id: str,
    url_id: str,
) -> JSON:
    return {
        "token": "fake-verification-token",
        "team_id": state.team_id,
        "team_domain": "hotplex-test",
        "channel_id": channel.id,
        "channel_name": "directmessage" if channel.is_im else channel.name,
        "user_id": user,
        "user_name": _user_ref(state, user)["name"],
        "command": command,
        "text": text,
        "api_app_id": state.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url(state, url_id),
        "trigger_id": trigger_id,
    }
