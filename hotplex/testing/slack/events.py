"""FakeSlack's side of a conversation: users write, click, submit and type slash commands."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from hotplex.testing.slack import payloads
from hotplex.testing.slack.limits import ApiError
from hotplex.testing.slack.records import JSON, Delivery, Edit, FileRecord, Message
from hotplex.testing.slack.server import FakeSlackBase
from hotplex.testing.slack.signing import signed_headers


class FakeSlack(FakeSlackBase):
    """A fake Slack workspace and app on 127.0.0.1 (see :mod:`hotplex.testing.slack`)."""

    # -- events ------------------------------------------------------------------------------

    def event_envelope(self, event: JSON, *, event_id: str | None = None) -> JSON:
        """The ``event_callback`` body Slack wraps ``event`` in."""
        return payloads.event_callback(self.state, event, event_id=event_id)

    async def send_event(self, event: JSON, *, event_id: str | None = None) -> Delivery:
        """Deliver any event (wrapped in an ``event_callback``) to the app."""
        envelope = self.event_envelope(event, event_id=event_id)
        return await self.deliverer.deliver("events_api", envelope, event_id=envelope["event_id"])

    async def redeliver(self, delivery: Delivery, reason: str = "timeout") -> Delivery:
        """Deliver ``delivery`` again as its next retry (same payload and ``event_id``, next
        ``retry_attempt``), even if it was acked: a restart-time redelivery."""
        await self.deliverer.redeliver(delivery, reason)
        return delivery

    async def assistant_thread_started(self, user: str, channel: str | None = None) -> str:
        """``user`` opens the assistant container: an ``assistant_thread_started`` event for a
        new thread in the bot's DM with them (created if needed); returns its ``thread_ts``."""
        dm = self.state.channels.get(channel or f"D{user}") or self.add_dm(user, channel)
        root = Message(
            dm.id,
            self.state.new_ts(),
            "",
            self.bot_user_id,
            bot_id=self.bot_id,
            subtype="assistant_app_thread",
        )
        self.state.add_message(root)
        event = {
            "type": "assistant_thread_started",
            "assistant_thread": {
                "user_id": user,
                "channel_id": dm.id,
                "thread_ts": root.ts,
                "context": {"channel_id": None, "team_id": self.team_id, "enterprise_id": None},
            },
            "event_ts": self.state.new_ts(),
        }
        await self.send_event(event)
        return root.ts

    def _attach(self, user: str, files: Sequence[Mapping[str, Any]]) -> list[JSON]:
        """Store attached files (``{"name", "content", "mimetype"?, "title"?}``); describe them."""
        described = []
        for spec in files:
            file_id = self.state.new_id("F")
            name = str(spec["name"])
            content = spec["content"]
            record = FileRecord(
                id=file_id,
                name=name,
                title=str(spec.get("title", name)),
                mimetype=str(spec.get("mimetype", "application/octet-stream")),
                content=content.encode() if isinstance(content, str) else bytes(content),
                user=user,
                url_private=f"{self.base_url}/files/{file_id}/{name}",
                url_private_download=f"{self.base_url}/files/{file_id}/download/{name}",
                completed=True,
            )
            self.state.files[file_id] = record
            described.append(record.as_json())
        return described

    async def user_message(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        mention: bool = False,
        files: Sequence[Mapping[str, Any]] = (),
        app_mention_first: bool = False,
    ) -> str:
        """``user`` posts ``text``; returns the message ``ts``.

        Delivered as a ``message`` event and, when the text mentions the bot (``mention=True``
        prefixes ``<@BOT> ``) outside a DM, also as an ``app_mention`` event: two deliveries with
        different ``event_id``\\ s, sent together (``message`` first unless
        ``app_mention_first``).
        """
        conversation = self.state.channels.get(channel)
        if conversation is None:
            raise KeyError(f"fake Slack: unknown channel {channel}; add_channel() it first")
        if user not in self.state.users:
            self.add_user(user)
        conversation.members.add(user)
        tag = f"<@{self.bot_user_id}>"
        if mention and tag not in text:
            text = f"{tag} {text}"
        root = None
        if thread_ts is not None:
            try:
                root = self.state.thread_root(channel, thread_ts)
            except ApiError:
                raise KeyError(f"fake Slack: no message {thread_ts} in {channel}") from None
        message = Message(
            channel=channel,
            ts=self.state.new_ts(),
            text=text,
            user=user,
            thread_ts=root,
            files=self._attach(user, files),
            subtype="file_share" if files else None,
            client_msg_id=str(uuid.uuid4()),
        )
        self.state.add_message(message)
        if self.bot_user_id not in conversation.members:
            return message.ts  # Slack tells an app only about conversations it is in
        kinds = ["message"]
        if tag in text and not conversation.is_im:
            kinds = ["app_mention", "message"] if app_mention_first else ["message", "app_mention"]
        # Two independent deliveries, as on Slack: over HTTP they are in flight together.
        events = [payloads.message_event(self.state, conversation, message, kind=k) for k in kinds]
        await asyncio.gather(*(self.send_event(event) for event in events))
        return message.ts

    async def user_edit(self, channel: str, ts: str, text: str) -> Delivery:
        """The author edits a message: a ``message`` event with subtype ``message_changed``."""
        message = self.state.message(channel, ts)
        previous = message.as_json()
        message.edits.append(
            Edit(message.text, message.blocks, time.monotonic(), message.user or "")
        )
        message.text = text
        self.state.changed()
        event = {
            "type": "message",
            "subtype": "message_changed",
            "channel": channel,
            "channel_type": self.state.channels[channel].channel_type,
            "hidden": True,
            "ts": self.state.new_ts(),
            "event_ts": self.state.new_ts(),
            "message": {
                **message.as_json(),
                "edited": {"user": message.user, "ts": self.state.new_ts()},
            },
            "previous_message": previous,
        }
        return await self.send_event(event)

    async def user_delete(self, channel: str, ts: str) -> Delivery:
        """The author deletes a message: ``message`` subtype ``message_deleted``."""
        message = self.state.message(channel, ts)
        message.deleted = True
        self.state.changed()
        event = {
            "type": "message",
            "subtype": "message_deleted",
            "channel": channel,
            "channel_type": self.state.channels[channel].channel_type,
            "hidden": True,
            "deleted_ts": ts,
            "ts": self.state.new_ts(),
            "event_ts": self.state.new_ts(),
            "previous_message": message.as_json(),
        }
        return await self.send_event(event)

    async def user_joins(self, channel: str, user: str) -> list[Delivery]:
        """``user`` joins: ``member_joined_channel`` and a ``channel_join`` message."""
        conversation = self.state.channels[channel]
        if user not in self.state.users:
            self.add_user(user)
        conversation.members.add(user)
        message = Message(
            channel,
            self.state.new_ts(),
            f"<@{user}> has joined the channel",
            user,
            subtype="channel_join",
        )
        self.state.add_message(message)
        joined = {
            "type": "member_joined_channel",
            "user": user,
            "channel": channel,
            "channel_type": "C" if not conversation.is_private else "G",
            "team": self.team_id,
            "event_ts": message.ts,
        }
        event = payloads.message_event(self.state, conversation, message)
        event["subtype"] = "channel_join"
        return [await self.send_event(joined), await self.send_event(event)]

    async def bot_message(
        self, channel: str, text: str, *, bot_id: str = "B0OTHER", thread_ts: str | None = None
    ) -> str:
        """Another bot posts (a ``message`` event with ``bot_id``); returns its ``ts``."""
        conversation = self.state.channels[channel]
        message = Message(
            channel, self.state.new_ts(), text, None, bot_id=bot_id, thread_ts=thread_ts
        )
        self.state.add_message(message)
        event = payloads.message_event(self.state, conversation, message)
        event.pop("user", None)
        event["bot_id"] = bot_id
        await self.send_event(event)
        return message.ts

    # -- interactivity -----------------------------------------------------------------------

    async def click_button(
        self, message_ts: str, action_id: str, user: str, value: str | None = None
    ) -> Delivery:
        """``user`` clicks the element ``action_id`` of a message: a ``block_actions`` payload
        with a fresh ``trigger_id`` and ``response_url``."""
        message = self.message(message_ts)
        action = payloads.find_action(message.blocks, action_id)
        if action is None:
            raise KeyError(f"fake Slack: message {message_ts} has no element {action_id!r}")
        if value is not None:
            action["value"] = value
        if user not in self.state.users:
            self.add_user(user)
        trigger_id = self.state.issue_trigger(user)
        url_id = self.responses.issue(
            channel=message.channel,
            user=user,
            message_ts=message.ts,
            thread_ts=message.thread_ts or message.ts,
        )
        payload = payloads.block_actions(
            self.state, message, action, user=user, trigger_id=trigger_id, url_id=url_id
        )
        return await self.deliverer.deliver("interactive", payload)

    async def submit_view(
        self,
        view_id: str | None = None,
        user: str | None = None,
        values: Mapping[str, Mapping[str, str]] | None = None,
    ) -> Delivery:
        """Submit an open modal (the newest one unless ``view_id``) with
        ``values={block_id: {action_id: text}}``; the ack's payload is ``delivery.response``."""
        open_views = [
            v for v in self.views if not v.closed and (view_id is None or v.id == view_id)
        ]
        if not open_views:
            raise KeyError(f"fake Slack: no open view {view_id or ''}".strip())
        view = open_views[-1]
        view.submissions += 1
        who = user or view.user
        state_values = payloads.input_values(view, {k: dict(v) for k, v in (values or {}).items()})
        payload = payloads.view_submission(
            self.state,
            view,
            user=who,
            values=state_values,
            trigger_id=self.state.issue_trigger(who),
        )
        return await self.deliverer.deliver("interactive", payload)

    async def slash_command(self, command: str, text: str, user: str, channel: str) -> Delivery:
        """``user`` types ``command text`` in ``channel``; ack text lands in ``ephemerals``."""
        conversation = self.state.channels.get(channel)
        if conversation is None:
            raise KeyError(f"fake Slack: unknown channel {channel}")
        if user not in self.state.users:
            self.add_user(user)
        trigger_id = self.state.issue_trigger(user)
        url_id = self.responses.issue(channel=channel, user=user, message_ts=None, thread_ts=None)
        payload = payloads.slash_command(
            self.state,
            command,
            text,
            user=user,
            channel=conversation,
            trigger_id=trigger_id,
            url_id=url_id,
        )
        return await self.deliverer.deliver("slash_commands", payload)

    # -- socket faults -----------------------------------------------------------------------

    async def disconnect_socket(
        self, reason: str = "refresh_requested", *, close_after: float = 5.0
    ) -> None:
        """Send ``disconnect`` to every connection; close them ``close_after`` seconds later."""
        await self.sockets.disconnect(reason, close_after=close_after)

    async def set_outage(self, down: bool = True) -> None:
        """Take Slack down (the Web API, files and response URLs answer 503, open sockets close
        and new ones are refused, events wait) or bring it back (waiting events go out)."""
        self.state.settings.outage = down
        self.state.changed()
        if down:
            await self.sockets.close_all(code=1011)
        else:
            self.deliverer.flush_pending()

    @property
    def outage(self) -> bool:
        return self.state.settings.outage

    def silence_socket(self) -> None:
        """Turn every open connection half-open: no pongs, no envelopes, acks ignored."""
        self.sockets.silence()

    async def close_socket(self, code: int = 1001) -> None:
        """Close every connection at once with a close frame."""
        await self.sockets.close_all(code)

    def stop_stream_by_user(self, ts: str) -> None:
        """The user pressed stop: later appends answer ``stopped_by_user``."""
        self.message(ts).streaming = "stopped_by_user"
        self.state.changed()

    # -- raw HTTP ----------------------------------------------------------------------------

    async def post_signed(
        self,
        body: bytes | str | JSON,
        *,
        content_type: str | None = None,
        signing_secret: str | None = None,
        timestamp: float | None = None,
        headers: Mapping[str, str] | None = None,
        url: str | None = None,
    ) -> tuple[int, Any]:
        """POST one request to ``http_target`` signed like Slack (or with another secret or
        timestamp, to test rejection); ``headers`` are added last (and may override the
        signature). Returns the status and the JSON (or text) answer; no retries."""
        target = url or self.http_target
        if target is None:
            raise RuntimeError("fake Slack: set http_target first")
        if isinstance(body, dict):
            raw, kind = json.dumps(body).encode(), "application/json"
        else:
            raw = body.encode() if isinstance(body, str) else body
            kind = "application/x-www-form-urlencoded"
        all_headers = {
            "Content-Type": content_type or kind,
            **signed_headers(signing_secret or self.signing_secret, raw, timestamp=timestamp),
            **(headers or {}),
        }
        return await self.deliverer.post(target, raw, all_headers)

    async def url_verification(self, challenge: str = "fake-challenge") -> tuple[int, Any]:
        """Slack's URL check when an events URL is saved: the app must echo ``challenge``."""
        body = {
            "token": "fake-verification-token",
            "challenge": challenge,
            "type": "url_verification",
        }
        return await self.post_signed(body)


__all__ = ["ApiError", "FakeSlack"]
