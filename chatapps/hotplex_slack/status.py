"""The turn's status (thinking, the tool running) in a Slack thread.

Where Slack allows it, the assistant thread status (``assistant.threads.setStatus``: "is
thinking…" under the thread, cleared by the reply). Where it refuses (an app without the
assistant feature, a conversation it does not cover), a compact context line instead: one
small message in the thread, updated as the status changes and deleted when it clears.
"""

from __future__ import annotations

import logging
from typing import Any

from hotplex import Address
from hotplex_slack.api import STREAM_REFUSED, call, error_code

__all__ = ["StatusLine"]

log = logging.getLogger(__name__)

#: setStatus answers meaning "not here": fall back to the context line.
_REFUSED = STREAM_REFUSED | {"not_agent_app", "channel_not_found", "invalid_thread_ts"}


class StatusLine:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._assistant = True
        self._lines: dict[str, str] = {}  # address -> ts of its context line

    async def set(self, where: Address, status: str | None) -> None:
        if where.thread is None:
            return  # a status belongs to a thread
        if self._assistant:
            try:
                await call(
                    self._client.assistant_threads_setStatus(
                        channel_id=where.channel, thread_ts=where.thread, status=status or ""
                    )
                )
                return
            except Exception as exc:
                if error_code(exc) not in _REFUSED:
                    raise
                log.info("no assistant thread status (%s); a context line instead", error_code(exc))
                self._assistant = False
        await self._line(where, status)

    async def _line(self, where: Address, status: str | None) -> None:
        key = str(where)
        ts = self._lines.get(key)
        if status is None:
            if ts is not None:
                del self._lines[key]
                await call(self._client.chat_delete(channel=where.channel, ts=ts))
            return
        blocks = [{"type": "context", "elements": [{"type": "mrkdwn", "text": f"⏳ {status}"}]}]
        if ts is None:
            data = await call(
                self._client.chat_postMessage(
                    channel=where.channel, thread_ts=where.thread, text=status, blocks=blocks
                )
            )
            self._lines[key] = str(data["ts"])
        else:
            await call(
                self._client.chat_update(channel=where.channel, ts=ts, text=status, blocks=blocks)
            )
