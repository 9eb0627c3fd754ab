"""The Web API methods besides ``chat.*``: assistant status, modals, files, lookups, reactions."""

from __future__ import annotations

import time

from hotplex.testing.slack.limits import ApiError, check_view, parse_json_arg
from hotplex.testing.slack.records import JSON, FileRecord, Message, Status, View
from hotplex.testing.slack.state import SlackState


def set_status(state: SlackState, args: JSON) -> JSON:
    channel = state.channel(args.get("channel_id"))
    thread_ts = state.thread_root(channel.id, args.get("thread_ts"))
    status = args.get("status")
    if not isinstance(status, str):
        raise ApiError("invalid_arguments", response_metadata={"messages": ["status is required"]})
    loading = parse_json_arg(args.get("loading_messages"), "loading_messages")
    if loading is not None and (not isinstance(loading, list) or not 1 <= len(loading) <= 10):
        raise ApiError(
            "invalid_arguments", response_metadata={"messages": ["loading_messages: 1 to 10 items"]}
        )
    state.statuses.append(Status(channel.id, thread_ts, status, loading, time.monotonic()))
    state.changed()
    return {}


def set_suggested_prompts(state: SlackState, args: JSON) -> JSON:
    state.channel(args.get("channel_id"))
    prompts = parse_json_arg(args.get("prompts"), "prompts")
    if not isinstance(prompts, list) or not prompts:
        raise ApiError("invalid_arguments")
    return {}


def set_title(state: SlackState, args: JSON) -> JSON:
    channel = state.channel(args.get("channel_id"))
    state.thread_root(channel.id, args.get("thread_ts"))
    if not isinstance(args.get("title"), str):
        raise ApiError("invalid_arguments")
    return {}


def _view_json(state: SlackState, view: View) -> JSON:
    return {
        **view.view,
        "id": view.id,
        "team_id": state.team_id,
        "app_id": state.app_id,
        "bot_id": state.bot_id,
        "state": {"values": {}},
        "hash": f"{view.submissions}.{view.id}",
        "root_view_id": view.id,
        "previous_view_id": None,
        "private_metadata": view.view.get("private_metadata", ""),
        "callback_id": view.view.get("callback_id", ""),
    }


def views_open(state: SlackState, args: JSON) -> JSON:
    view_spec = check_view(args.get("view"))
    trigger = state.use_trigger(args.get("trigger_id"), state.settings.trigger_lifetime)
    view = View(state.new_id("V"), trigger.user, view_spec, trigger.id)
    state.views.append(view)
    state.changed()
    return {"view": _view_json(state, view)}


def views_update(state: SlackState, args: JSON) -> JSON:
    view_spec = check_view(args.get("view"))
    for view in state.views:
        if view.id == args.get("view_id") and not view.closed:
            view.view = view_spec
            state.changed()
            return {"view": _view_json(state, view)}
    raise ApiError("not_found")


def files_info(state: SlackState, args: JSON) -> JSON:
    record = state.files.get(str(args.get("file")))
    if record is None or (record.content is None and not record.completed):
        raise ApiError("file_not_found")
    return {"file": record.as_json(), "comments": [], "response_metadata": {"next_cursor": ""}}


def get_upload_url(state: SlackState, args: JSON) -> JSON:
    filename = args.get("filename")
    length = args.get("length")
    if not isinstance(filename, str) or not filename:
        raise ApiError(
            "invalid_arguments", response_metadata={"messages": ["filename is required"]}
        )
    try:
        size = int(str(length))
    except ValueError:
        raise ApiError(
            "invalid_arguments", response_metadata={"messages": ["length is required"]}
        ) from None
    if size < 1:
        raise ApiError(
            "invalid_arguments", response_metadata={"messages": ["length must be positive"]}
        )
    file_id = state.new_id("F")
    base = state.settings.public_url
    state.files[file_id] = FileRecord(
        id=file_id,
        name=filename,
        title=filename,
        mimetype="application/octet-stream",
        content=None,
        user=state.bot_user_id,
        url_private=f"{base}/files/{file_id}/{filename}",
        url_private_download=f"{base}/files/{file_id}/download/{filename}",
        length=size,
    )
    state.changed()
    return {"upload_url": f"{base}/upload/v1/{file_id}", "file_id": file_id}


def complete_upload(state: SlackState, args: JSON) -> JSON:
    entries = parse_json_arg(args.get("files"), "files")
    if not isinstance(entries, list) or not entries:
        raise ApiError("invalid_arguments", response_metadata={"messages": ["files is required"]})
    records = []
    for entry in entries:
        record = state.files.get(str(entry.get("id"))) if isinstance(entry, dict) else None
        if record is None or record.user != state.bot_user_id:
            raise ApiError("file_not_found")
        if record.content is None:
            raise (
                ApiError("file_upload_not_complete")
                if record.completed
                else ApiError("file_not_found")
            )
        if record.length is not None and record.length != len(record.content):
            raise ApiError("file_upload_size_does_not_match")
        if isinstance(entry.get("title"), str):
            record.title = entry["title"]
        records.append(record)
    channel_id = args.get("channel_id") or args.get("channels")
    thread_ts = None
    if channel_id:
        channel = state.channel(str(channel_id).split(",")[0])
        if state.bot_user_id not in channel.members:
            raise ApiError("not_in_channel")
        if args.get("thread_ts"):
            thread_ts = state.thread_root(channel.id, args["thread_ts"])
        for record in records:
            record.channels.append(channel.id)
            record.thread_ts = thread_ts
    for record in records:
        record.completed = True
    if channel_id:
        comment = args.get("initial_comment")
        state.add_message(
            Message(
                channel=records[0].channels[-1],
                ts=state.new_ts(),
                text=comment if isinstance(comment, str) else "",
                user=state.bot_user_id,
                bot_id=state.bot_id,
                thread_ts=thread_ts,
                files=[record.as_json() for record in records],
                subtype="file_share",
            )
        )
    state.changed()
    return {"files": [{"id": record.id, "title": record.title} for record in records]}


def conversations_info(state: SlackState, args: JSON) -> JSON:
    return {"channel": state.channel(args.get("channel")).as_json(state.bot_user_id)}


def conversations_open(state: SlackState, args: JSON) -> JSON:
    """Open (or find) the bot's DM with one user (``users``); group DMs are not modelled."""
    users = str(args.get("users") or "").split(",")
    if len(users) != 1 or not users[0]:
        raise ApiError("invalid_arguments", response_metadata={"messages": ["one user only"]})
    return {"channel": {"id": state.dm_with(users[0]).id}}


def users_info(state: SlackState, args: JSON) -> JSON:
    return {"user": state.user(args.get("user")).as_json()}


def _reaction_target(state: SlackState, args: JSON) -> tuple[Message, str]:
    channel = state.channel(args.get("channel"))
    message = state.message(channel.id, args.get("timestamp"))
    name = args.get("name")
    if not isinstance(name, str) or not name or ":" in name or " " in name:
        raise ApiError("invalid_name")
    return message, name


def reactions_add(state: SlackState, args: JSON) -> JSON:
    message, name = _reaction_target(state, args)
    users = message.reactions.setdefault(name, [])
    if state.bot_user_id in users:
        raise ApiError("already_reacted")
    users.append(state.bot_user_id)
    state.changed()
    return {}


def reactions_remove(state: SlackState, args: JSON) -> JSON:
    message, name = _reaction_target(state, args)
    users = message.reactions.get(name, [])
    if state.bot_user_id not in users:
        raise ApiError("no_reaction")
    users.remove(state.bot_user_id)
    state.changed()
    return {}


OTHER_METHODS = {
    "assistant.threads.setStatus": set_status,
    "assistant.threads.setSuggestedPrompts": set_suggested_prompts,
    "assistant.threads.setTitle": set_title,
    "views.open": views_open,
    "views.update": views_update,
    "files.info": files_info,
    "files.getUploadURLExternal": get_upload_url,
    "files.completeUploadExternal": complete_upload,
    "conversations.info": conversations_info,
    "conversations.open": conversations_open,
    "users.info": users_info,
    "reactions.add": reactions_add,
    "reactions.remove": reactions_remove,
}
