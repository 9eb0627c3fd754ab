"""Getting payloads to the app, and redelivering them the way Slack does.

Transport: the newest open Socket Mode connection if there is one; else an HTTP POST to
``http_target`` signed with the signing secret; else the delivery waits (pending) and goes out
when a socket connects. An attempt not acked within ``ack_timeout`` seconds (no socket ack, or
no 2xx HTTP answer in time) is retried after ``retry_delays[n]`` seconds, once per entry (Slack
retries three times); each retry is a new envelope (Socket Mode: new ``envelope_id``,
``retry_attempt`` n, ``retry_reason`` ``timeout``; HTTP: ``X-Slack-Retry-Num`` and
``X-Slack-Retry-Reason`` ``http_timeout``/``http_error``/``connection_failed``), with the same
payload and ``event_id``. After the last retry the delivery ``gave_up``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.parse
import uuid
from collections.abc import Coroutine, Mapping
from typing import Any

import aiohttp

from hotplex.testing.slack.records import JSON, Ack, Attempt, Delivery, DeliveryKind, Ephemeral
from hotplex.testing.slack.signing import signed_headers
from hotplex.testing.slack.socket_mode import SocketModeServer
from hotplex.testing.slack.state import SlackState


def http_body(kind: DeliveryKind, payload: JSON) -> tuple[bytes, str]:
    """The raw body and content type Slack uses for each kind of request."""
    if kind == "events_api":
        return json.dumps(payload, ensure_ascii=False).encode(), "application/json"
    if kind == "interactive":
        form = {"payload": json.dumps(payload, ensure_ascii=False)}
    else:
        form = {key: str(value) for key, value in payload.items()}
    return urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"


class Deliverer:
    """Sends deliveries, tracks their acks and retries the unacked ones."""

    def __init__(
        self, state: SlackState, sockets: SocketModeServer, *, signing_secret: str
    ) -> None:
        self.state = state
        self.sockets = sockets
        self.signing_secret = signing_secret
        self.http_target: str | None = None
        self.ack_timeout = 3.0
        self.retry_delays: tuple[float, ...] = (0.0, 0.5, 1.0)
        self.pending: list[tuple[Delivery, int, str]] = []
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- entry points ------------------------------------------------------------------------

    async def deliver(
        self, kind: DeliveryKind, payload: JSON, *, event_id: str | None = None
    ) -> Delivery:
        delivery = Delivery(kind, payload, event_id)
        self.state.deliveries.append(delivery)
        await self._attempt(delivery, 0, "")
        return delivery

    async def redeliver(self, delivery: Delivery, reason: str) -> None:
        """Send ``delivery`` again as the next retry, acked or not (what Slack does when it
        saw no ack in time, e.g. while the app restarted)."""
        number = max((a.retry_attempt for a in delivery.attempts), default=-1) + 1
        await self._attempt(delivery, number, reason)

    def on_connect(self) -> None:
        """A socket connected: send what waited for one."""
        self.flush_pending()

    def on_ack(self, envelope_id: str, payload: object) -> None:
        for delivery in reversed(self.state.deliveries):
            for attempt in delivery.attempts:
                if attempt.envelope_id == envelope_id:
                    self.state.acks.append(Ack(envelope_id, payload, time.monotonic(), known=True))
                    if attempt.acked_at is None:
                        attempt.acked_at = time.monotonic()
                        attempt.response = payload
                        self._acked(delivery, payload)
                    return
        self.state.acks.append(Ack(envelope_id, payload, time.monotonic(), known=False))

    # -- attempts ------------------------------------------------------------------------------

    async def _attempt(self, delivery: Delivery, retry_attempt: int, reason: str) -> None:
        connection = self.sockets.target()
        if self.state.settings.outage:
            self.pending.append((delivery, retry_attempt, reason))
            self.state.changed()
        elif connection is not None:
            attempt = Attempt(
                "socket", retry_attempt, reason, time.monotonic(), envelope_id=str(uuid.uuid4())
            )
            delivery.attempts.append(attempt)
            envelope = {
                "envelope_id": attempt.envelope_id,
                "type": delivery.kind,
                "payload": delivery.payload,
                "accepts_response_payload": delivery.kind != "events_api",
                "retry_attempt": retry_attempt,
                "retry_reason": reason,
            }
            await self.sockets.send(connection, envelope)
            self.state.changed()
            self.spawn(self._retry_unless_acked(delivery, attempt, "timeout"))
        elif self.http_target is not None:
            await self._post(delivery, retry_attempt, reason)
        else:
            self.pending.append((delivery, retry_attempt, reason))
            self.state.changed()

    async def _post(self, delivery: Delivery, retry_attempt: int, reason: str) -> None:
        assert self.http_target is not None
        body, content_type = http_body(delivery.kind, delivery.payload)
        headers = {"Content-Type": content_type, **signed_headers(self.signing_secret, body)}
        if retry_attempt:
            headers.update(
                {"X-Slack-Retry-Num": str(retry_attempt), "X-Slack-Retry-Reason": reason}
            )
        attempt = Attempt("http", retry_attempt, reason, time.monotonic())
        delivery.attempts.append(attempt)
        self.state.changed()
        failure = "http_error"
        try:
            async with asyncio.timeout(self.ack_timeout):
                status, response, answer_headers = await self._exchange(
                    self.http_target, body, headers
                )
            if delivery.kind == "slash_commands" and isinstance(response, str) and response:
                response = {"text": response}  # Slack shows a plain-text answer as the reply
            attempt.http_status, attempt.response = status, response
            if 200 <= status < 300:
                attempt.acked_at = time.monotonic()
                self._acked(delivery, response)
                return
            if answer_headers.get("X-Slack-No-Retry") == "1":
                delivery.gave_up = True  # the app asked Slack not to retry this one
                return
        except TimeoutError:
            failure = "http_timeout"
        except aiohttp.ClientError:
            failure = "connection_failed"
        finally:
            self.state.changed()
        self.spawn(self._retry_unless_acked(delivery, attempt, failure, wait=False))

    async def _retry_unless_acked(
        self, delivery: Delivery, attempt: Attempt, reason: str, *, wait: bool = True
    ) -> None:
        if wait:
            await asyncio.sleep(self.ack_timeout)
        if delivery.acked:
            return
        number = attempt.retry_attempt + 1
        if number > len(self.retry_delays):
            delivery.gave_up = True
            self.state.changed()
            return
        await asyncio.sleep(self.retry_delays[number - 1])
        if not delivery.acked:
            await self._attempt(delivery, number, reason)

    def _acked(self, delivery: Delivery, response: object) -> None:
        """What an ack's payload does: a slash command's text shows to its user; a view closes."""
        payload = delivery.payload
        if (
            delivery.kind == "slash_commands"
            and isinstance(response, dict)
            and response.get("text")
            and response.get("response_type") != "in_channel"
        ):
            self.state.ephemerals.append(
                Ephemeral(
                    str(payload.get("channel_id")),
                    str(payload.get("user_id")),
                    str(response["text"]),
                    response.get("blocks"),
                    None,
                    "ack",
                )
            )
        if payload.get("type") == "view_submission":
            errors = isinstance(response, dict) and response.get("response_action") == "errors"
            view_id = payload["view"]["id"]
            for view in self.state.views:
                if view.id == view_id and not errors:
                    view.closed = True
        self.state.changed()

    # -- HTTP --------------------------------------------------------------------------------

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        """POST raw ``body``; return the status and the JSON (or text) answer."""
        status, parsed, _ = await self._exchange(url, body, headers)
        return status, parsed

    async def _exchange(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, Any, Mapping[str, str]]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.post(url, data=body, headers=headers) as response:
            text = await response.text()
            try:
                parsed: Any = json.loads(text) if text else None
            except ValueError:
                parsed = text
            return response.status, parsed, response.headers

    def flush_pending(self) -> None:
        """Send what waited for a transport (a socket connected or ``http_target`` was set)."""
        waiting, self.pending = self.pending, []
        for delivery, retry_attempt, reason in waiting:
            self.spawn(self._attempt(delivery, retry_attempt, reason))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._session is not None:
            await self._session.close()
