"""Slack's :class:`~hotplex.interfaces.MessageOperations`: what core's renderer, approvals
and delivery router call to write into Slack.

Replies are ``markdown_text`` (standard markdown: code blocks and tables read well), in the
thread of their address. Streaming goes down a ladder without losing text: a native stream
(``chat.startStream``/``appendStream``/``stopStream``); when the workspace refuses streams,
the same call goes out as ``chat.postMessage`` (and later parts as ``chat.update`` of the
whole text so far), and the adapter declares ``edit`` from then on; a stream Slack closed
(its lifetime) is finished with ``chat.update`` of everything it carried. A stream the user
stopped (Slack answers ``stopped_by_user``) raises core's
:class:`~hotplex.errors.StoppedByUserError`: the renderer writes no more and interrupts the
turn.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

from hotplex import Address
from hotplex.address import AddressLike
from hotplex.errors import StoppedByUserError
from hotplex.interfaces import MessageOperations
from hotplex.types import ApprovalOutcome, ApprovalRequest, ChatCapabilities, MessageRef
from hotplex_slack.api import STOPPED_BY_USER, STREAM_CLOSED, STREAM_REFUSED, call, error_code
from hotplex_slack.cards import approval_blocks, outcome_blocks
from hotplex_slack.settings import SlackSettings
from hotplex_slack.status import StatusLine
from hotplex_slack.text import slack_escape

__all__ = ["MAX_MARKDOWN", "SlackOperations"]

log = logging.getLogger(__name__)

#: Slack takes 12,000 characters of ``markdown_text`` per call; measured in UTF-16 units
#: (at least the characters Slack counts), with some room to spare.
MAX_MARKDOWN = 11_500
#: Bursts of core's shared write budget for the workspace (``writes_per_minute``). Slack
#: counts per minute and tolerates bursts: native streams are mostly ``chat.appendStream``
#: (Tier 4, 100+/min), so 80 a minute in bursts of 10 by default (at most 90 in any
#: minute); ``chat.update`` (Tier 3, 50+/min) gets half, in bursts of 5 (at most 45).
NATIVE_BURST, EDIT_BURST = 10, 5
_KEPT = 2000  # streams and recipients remembered


def _lru_put(cache: OrderedDict[str, Any], key: str, value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _KEPT:
        cache.popitem(last=False)


class SlackOperations(MessageOperations):
    """Writes into one workspace through ``client`` (an ``AsyncWebClient``)."""

    def __init__(self, client: Any, settings: SlackSettings) -> None:
        from hotplex.chat import utf16_length

        self.client = client
        self._native = settings.streaming
        self._streams: OrderedDict[str, str] = OrderedDict()  # ts -> text it carries
        self._plain: set[str] = set()  # stream refs that became ordinary messages
        self._recipients: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._status = StatusLine(client)
        base = ChatCapabilities(
            max_message_length=MAX_MARKDOWN,
            streaming="native",
            min_update_interval=settings.min_update_interval,
            max_writes_per_minute=settings.writes_per_minute,
            write_burst=NATIVE_BURST,
            stream_lifetime=settings.stream_lifetime,
            threads=True,
            buttons=True,
            files=True,
            reactions=True,
            escape=slack_escape,
            length=utf16_length,
        )
        self._caps = {
            "native": base,
            "edit": replace(
                base,
                streaming="edit",
                stream_lifetime=None,
                max_writes_per_minute=settings.writes_per_minute / 2,
                write_burst=EDIT_BURST,
            ),
        }

    @property
    def capabilities(self) -> ChatCapabilities:
        return self._caps["native" if self._native else "edit"]

    @property
    def streams_natively(self) -> bool:
        """False once streaming is off or the workspace refused a stream."""
        return self._native

    def recipient(self, address: AddressLike, team: str, user: str) -> None:
        """Who a conversation's streams are for (Slack wants the recipient in channels)."""
        _lru_put(self._recipients, str(address), (team, user))

    # -- messages ------------------------------------------------------------------------

    async def send(self, address: AddressLike, text: str) -> MessageRef:
        where = Address.of(address)
        data = await call(
            self.client.chat_postMessage(
                channel=where.channel, thread_ts=where.thread, markdown_text=text or "…"
            )
        )
        return MessageRef(str(where), str(data["ts"]))

    async def update(self, ref: MessageRef, text: str) -> None:
        where = Address.of(ref.address)
        await call(
            self.client.chat_update(
                channel=where.channel, ts=ref.message_id, markdown_text=text or "…"
            )
        )
        self._streams.pop(ref.message_id, None)

    async def delete(self, ref: MessageRef) -> None:
        where = Address.of(ref.address)
        await call(self.client.chat_delete(channel=where.channel, ts=ref.message_id))
        self._streams.pop(ref.message_id, None)

    # -- native streams, with their fallback -------------------------------------------

    async def start_stream(self, address: AddressLike, text: str = "") -> MessageRef:
        where = Address.of(address)
        if not self._native or where.thread is None:  # Slack streams only thread replies
            return await self._start_plain(where, text)
        team, user = self._recipients.get(str(where), (where.workspace, None))
        try:
            data = await call(
                self.client.chat_startStream(
                    channel=where.channel,
                    thread_ts=where.thread,
                    markdown_text=text or "…",
                    recipient_team_id=team,
                    recipient_user_id=user,
                )
            )
        except Exception as exc:
            if error_code(exc) not in STREAM_REFUSED:
                raise
            log.warning("Slack refused a stream (%s); replies use chat.update", error_code(exc))
            self._native = False
            return await self._start_plain(where, text)
        ref = MessageRef(str(where), str(data["ts"]))
        _lru_put(self._streams, ref.message_id, text)
        return ref

    async def _start_plain(self, where: Address, text: str) -> MessageRef:
        ref = await self.send(where, text)
        _lru_put(self._streams, ref.message_id, text)
        self._plain.add(ref.message_id)
        return ref

    async def append_stream(self, ref: MessageRef, delta: str) -> None:
        await self._stream_write(ref, delta, stop=False)

    async def stop_stream(self, ref: MessageRef, delta: str = "") -> None:
        await self._stream_write(ref, delta, stop=True)

    async def _stream_write(self, ref: MessageRef, delta: str, *, stop: bool) -> None:
        ts, where = ref.message_id, Address.of(ref.address)
        carried = self._streams.get(ts)
        if ts in self._plain and carried is not None:
            await self._finish_plain(ref, carried + delta, stop=stop)
            return
        method = self.client.chat_stopStream if stop else self.client.chat_appendStream
        try:
            await call(method(channel=where.channel, ts=ts, markdown_text=delta or None))
        except Exception as exc:
            if error_code(exc) == STOPPED_BY_USER:
                self._forget(ts)
                raise StoppedByUserError("the user stopped the Slack stream") from exc
            if error_code(exc) not in STREAM_CLOSED or carried is None:
                raise
            # Slack ended the stream: the message goes on as an ordinary one, with all of it
            self._plain.add(ts)
            await self._finish_plain(ref, carried + delta, stop=stop)
            return
        if stop:
            self._forget(ts)
        elif carried is not None:
            _lru_put(self._streams, ts, carried + delta)

    async def _finish_plain(self, ref: MessageRef, text: str, *, stop: bool) -> None:
        await self.update(ref, text)
        if stop:
            self._forget(ref.message_id)
        else:
            _lru_put(self._streams, ref.message_id, text)

    def _forget(self, ts: str) -> None:
        self._streams.pop(ts, None)
        self._plain.discard(ts)

    async def set_status(self, address: AddressLike, status: str | None) -> None:
        await self._status.set(Address.of(address), status)

    # -- approvals, ephemeral answers, reactions, files ---------------------------------

    async def ask_approval(self, request: ApprovalRequest) -> MessageRef:
        where = Address.of(request.address or "")
        text, blocks = approval_blocks(request)
        data = await call(
            self.client.chat_postMessage(
                channel=where.channel, thread_ts=where.thread, text=text, blocks=blocks
            )
        )
        return MessageRef(str(where), str(data["ts"]))

    async def update_approval(
        self, ref: MessageRef, request: ApprovalRequest, outcome: ApprovalOutcome
    ) -> None:
        text, blocks = outcome_blocks(request, outcome)
        where = Address.of(ref.address)
        await call(
            self.client.chat_update(
                channel=where.channel, ts=ref.message_id, text=text, blocks=blocks
            )
        )

    async def reply_ephemeral(self, address: AddressLike, user: str, text: str) -> None:
        where = Address.of(address)
        await call(
            self.client.chat_postEphemeral(
                channel=where.channel,
                user=user.split(":", 1)[-1],  # slack:U01 -> U01
                text=slack_escape(text),
                thread_ts=where.thread,
            )
        )

    async def react(self, ref: MessageRef, emoji: str) -> None:
        where = Address.of(ref.address)
        await call(
            self.client.reactions_add(channel=where.channel, timestamp=ref.message_id, name=emoji)
        )

    async def upload_file(self, address: AddressLike, path: Path, title: str = "") -> MessageRef:
        """Slack's external upload (``files.getUploadURLExternal``, the upload,
        ``files.completeUploadExternal``) through slack-sdk's ``files_upload_v2``, into the
        thread of ``address``."""
        where = Address.of(address)
        data = await call(
            self.client.files_upload_v2(
                file=str(path),
                filename=path.name,
                title=title or path.name,
                channel=where.channel,
                thread_ts=where.thread,
            )
        )
        files = data.get("files") or [data.get("file") or {}]
        return MessageRef(str(where), str(files[0].get("id", "")))
