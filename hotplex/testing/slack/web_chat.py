"""``chat.*`` methods: post, update, delete, ephemeral, and the streaming state machine.

A streamed message is ``in_progress`` from ``chat.startStream`` until ``chat.stopStream`` (then
``completed``) or until ``stream_lifetime`` seconds of the injected clock have passed since it
started; after that ``appendStream``/``stopStream`` answer ``message_not_in_streaming_state``
(and ``chat.update`` may repair it). ``chat.update`` on a live stream answers
``streaming_state_conflict``.
"""

from __future__ import annotations

import time
from typing import Any

from hotplex.testing.slack.limits import (
    MARKDOWN_LIMIT,
    TEXT_LIMIT,
    ApiError,
    check_blocks,
    check_chunks,
    check_text,
    parse_json_arg,
)
from hotplex.testing.slack.records import JSON, Edit, Ephemeral, Message
from hotplex.testing.slack.state import SlackState


def _string(args: JSON, name: str, error: str = "invalid_arguments") -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError(error)
    return value


def _writable_channel(state: SlackState, args: JSON) -> str:
    channel = state.channel(args.get("channel"))
    if state.bot_user_id not in channel.members:
        raise ApiError("not_in_channel")
    return channel.id


def _content(args: JSON) -> tuple[str, list[JSON] | None, str | None]:
    """``(text, blocks, markdown_text)`` of a post or update, with Slack's checks."""
    markdown = args.get("markdown_text")
    text = check_text(args.get("text"))
    blocks = check_blocks(args.get("blocks"))
    if markdown is not None:
        if text or blocks is not None:
            raise ApiError("markdown_text_conflict")
        markdown = check_text(markdown, limit=MARKDOWN_LIMIT)
        return markdown, None, markdown
    if not text and not blocks and not args.get("attachments"):
        raise ApiError("no_text")
    return text, blocks, None


def _thread(state: SlackState, channel: str, args: JSON) -> str | None:
    thread_ts = args.get("thread_ts")
    if thread_ts in (None, ""):
        return None
    return state.thread_root(channel, thread_ts)


def _metadata(args: JSON) -> JSON | None:
    metadata = parse_json_arg(args.get("metadata"), "metadata")
    return metadata if isinstance(metadata, dict) else None


def _bot_message(state: SlackState, channel: str, text: str, **fields: Any) -> Message:
    return state.add_message(
        Message(
            channel=channel,
            ts=state.new_ts(),
            text=text,
            user=state.bot_user_id,
            bot_id=state.bot_id,
            **fields,
        )
    )


def post_message(state: SlackState, args: JSON) -> JSON:
    target = args.get("channel")
    if isinstance(target, str) and target in state.users and target not in state.channels:
        args = {**args, "channel": state.dm_with(target).id}  # a user id posts to the DM
    channel = _writable_channel(state, args)
    text, blocks, markdown = _content(args)
    message = _bot_message(
        state,
        channel,
        text,
        thread_ts=_thread(state, channel, args),
        blocks=blocks,
        markdown_text=markdown,
        metadata=_metadata(args),
    )
    return {"channel": channel, "ts": message.ts, "message": message.as_json()}


def _own_message(state: SlackState, args: JSON, error: str) -> Message:
    channel = state.channel(args.get("channel"))
    message = state.message(channel.id, args.get("ts"))
    if message.bot_id != state.bot_id:
        raise ApiError(error)
    return message


def stream_live(state: SlackState, message: Message) -> bool:
    """Whether ``message`` still accepts appends (its lifetime is checked on the injected clock)."""
    if message.streaming != "in_progress" or message.stream_started_at is None:
        return False
    return state.clock() - message.stream_started_at < state.settings.stream_lifetime


def update(state: SlackState, args: JSON) -> JSON:
    message = _own_message(state, args, "cant_update_message")
    if stream_live(state, message):
        raise ApiError("streaming_state_conflict")
    text, blocks, markdown = _content(args)
    message.edits.append(Edit(message.text, message.blocks, time.monotonic(), "chat.update"))
    message.text, message.blocks, message.markdown_text = text, blocks, markdown
    message.note_text()
    if message.streaming == "in_progress":
        message.streaming = "completed"
    state.changed()
    return {
        "channel": message.channel,
        "ts": message.ts,
        "text": text,
        "message": message.as_json(),
    }


def delete(state: SlackState, args: JSON) -> JSON:
    message = _own_message(state, args, "cant_delete_message")
    message.deleted = True
    state.changed()
    return {"channel": message.channel, "ts": message.ts}


def post_ephemeral(state: SlackState, args: JSON) -> JSON:
    channel = state.channel(args.get("channel"))
    user = _string(args, "user", "user_not_found")
    state.user(user)
    if user not in channel.members:
        raise ApiError("user_not_in_channel")
    text, blocks, _ = _content(args)
    thread_ts = args.get("thread_ts") if isinstance(args.get("thread_ts"), str) else None
    state.ephemerals.append(
        Ephemeral(channel.id, user, text, blocks, thread_ts or None, "chat.postEphemeral")
    )
    state.changed()
    return {"message_ts": state.new_ts()}


# -- streaming ---------------------------------------------------------------------------


def _stream_content(args: JSON, *, required: bool) -> tuple[str, list[JSON]]:
    markdown = args.get("markdown_text")
    raw_chunks = args.get("chunks")
    if markdown is None and raw_chunks is None:
        if required:
            raise ApiError(
                "invalid_arguments",
                response_metadata={"messages": ["markdown_text or chunks is required"]},
            )
        return "", []
    text = check_text(markdown, limit=MARKDOWN_LIMIT)
    chunks: list[JSON] = []
    if raw_chunks is not None:
        chunks, chunk_text = check_chunks(raw_chunks)
        text += chunk_text
        if len(text) > MARKDOWN_LIMIT:
            raise ApiError("msg_too_long")
    return text, chunks


def _require_streaming(state: SlackState) -> None:
    if not state.settings.streaming_enabled:
        raise ApiError("unknown_method")


def start_stream(state: SlackState, args: JSON) -> JSON:
    _require_streaming(state)
    channel = _writable_channel(state, args)
    if not args.get("thread_ts"):
        raise ApiError(
            "invalid_arguments", response_metadata={"messages": ["thread_ts is required"]}
        )
    thread_ts = _thread(state, channel, args)
    if not args.get("recipient_team_id"):
        raise ApiError("missing_recipient_team_id")
    if not args.get("recipient_user_id"):
        raise ApiError("missing_recipient_user_id")
    text, chunks = _stream_content(args, required=True)
    message = _bot_message(
        state,
        channel,
        text,
        thread_ts=thread_ts,
        markdown_text=text,
        streaming="in_progress",
        stream_started_at=state.clock(),
        chunks=chunks,
    )
    return {"channel": channel, "ts": message.ts}


def _live_stream(state: SlackState, args: JSON) -> Message:
    message = _own_message(state, args, "message_not_owned_by_app")
    if message.streaming == "stopped_by_user":
        raise ApiError("stopped_by_user")
    if not stream_live(state, message):
        raise ApiError("message_not_in_streaming_state")
    return message


def _append(state: SlackState, message: Message, text: str, chunks: list[JSON]) -> JSON:
    """Add streamed text; beyond ``TEXT_LIMIT`` Slack keeps the start and warns (the rest is
    lost), which is what the returned extra fields say."""
    message.text += text
    message.chunks.extend(chunks)
    extra: JSON = {}
    if len(message.text) > TEXT_LIMIT:
        message.text = message.text[:TEXT_LIMIT]
        extra = {
            "warning": "message_truncated",
            "response_metadata": {"warnings": ["message_truncated"]},
        }
    message.markdown_text = message.text
    message.note_text()
    state.changed()
    return extra


def append_stream(state: SlackState, args: JSON) -> JSON:
    _require_streaming(state)
    message = _live_stream(state, args)
    text, chunks = _stream_content(args, required=True)
    extra = _append(state, message, text, chunks)
    return {"channel": message.channel, "ts": message.ts, **extra}


def stop_stream(state: SlackState, args: JSON) -> JSON:
    _require_streaming(state)
    message = _live_stream(state, args)
    text, chunks = _stream_content(args, required=False)
    blocks = check_blocks(args.get("blocks"))
    message.streaming = "completed"
    if blocks is not None:
        message.blocks = blocks
    metadata = _metadata(args)
    if metadata is not None:
        message.metadata = metadata
    extra = _append(state, message, text, chunks)
    return {"channel": message.channel, "ts": message.ts, "message": message.as_json(), **extra}


CHAT_METHODS = {
    "chat.postMessage": post_message,
    "chat.update": update,
    "chat.delete": delete,
    "chat.postEphemeral": post_ephemeral,
    "chat.startStream": start_stream,
    "chat.appendStream": append_stream,
    "chat.stopStream": stop_stream,
}
