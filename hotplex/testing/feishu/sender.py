"""Pushing events and callbacks to the app: over the long connection when a client is
connected, else as a webhook POST (encrypted and signed when the app has an Encrypt Key).
Every push is recorded as a :class:`~hotplex.testing.feishu.models.Delivery`; the envelopes
are kept so an event can be re-pushed with its original ``event_id``."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

import aiohttp

from hotplex.testing.feishu.crypto import SIGNATURE_HEADER
from hotplex.testing.feishu.events import webhook_body
from hotplex.testing.feishu.limits import Clock
from hotplex.testing.feishu.longconn import LongConnection
from hotplex.testing.feishu.models import Delivery

__all__ = ["Sender"]

JSON = dict[str, Any]
Via = Literal["ws", "webhook"]
CALLBACK = "card.action.trigger"  # callbacks are answered once, never re-pushed


def _acked(delivery: Delivery) -> bool:
    return delivery.status is not None and 200 <= delivery.status < 300


class Sender:
    def __init__(
        self,
        *,
        longconn: LongConnection,
        encrypt_key: str,
        clock: Clock,
        ack_seconds: float,
        lock: threading.RLock,
        on_change: Callable[[], None],
        repush_delays: Sequence[float] = (),
    ) -> None:
        self.longconn = longconn
        self.repush_delays = tuple(repush_delays)
        self.encrypt_key = encrypt_key
        self.clock = clock
        self.ack_seconds = ack_seconds
        self.webhook_url: str | None = None
        self.card_url: str | None = None
        self.deliveries: list[Delivery] = []
        self.envelopes: dict[str, JSON] = {}
        self._lock = lock
        self._on_change = on_change
        self._session: aiohttp.ClientSession | None = None
        self._repushes: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        for task in list(self._repushes):
            task.cancel()
        await asyncio.gather(*self._repushes, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def deliver(
        self,
        payload: JSON,
        *,
        via: Via | None = None,
        url: str | None = None,
        fragments: int = 1,
        lose_fragment: int | None = None,
        encrypt_key: str | None = None,
        timestamp: str | None = None,
        nonce: str | None = None,
        signature: str | None = None,
        retry: bool = True,
    ) -> Delivery:
        """Push ``payload`` (an envelope, or a ``url_verification`` body). Over the long
        connection it goes in ``fragments`` frames, the one numbered ``lose_fragment`` never
        sent. For a webhook push ``encrypt_key``, ``timestamp``, ``nonce`` and ``signature``
        override what is sent, to forge a bad one. An event push that is not acked is pushed
        again after each of ``repush_delays`` (until one is acked) when ``retry`` is true."""
        found = payload.get("header")
        header: JSON = found if isinstance(found, dict) else {}
        event_id = str(header.get("event_id", ""))
        event_type = str(header.get("event_type") or payload.get("type") or "")
        if event_id:
            with self._lock:
                self.envelopes[event_id] = payload
        if via is None:
            via = "ws" if self.longconn.connected and url is None else "webhook"
        started = self.clock()
        if via == "ws":
            ack = await self.longconn.push(
                event_id,
                json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                fragments=fragments,
                lose_fragment=lose_fragment,
                timeout=self.ack_seconds,
            )
            delivery = Delivery(
                event_id,
                event_type,
                "ws",
                started,
                None if ack is None else ack.code,
                None if ack is None else ack.data,
            )
        else:
            target = url or self._url_for(event_type)
            key = self.encrypt_key if encrypt_key is None else encrypt_key
            stamp = str(int(self.clock())) if timestamp is None else timestamp
            body, headers = webhook_body(payload, encrypt_key=key, timestamp=stamp, nonce=nonce)
            if signature is not None:
                headers[SIGNATURE_HEADER] = signature
            status, answer = await self._post(target, body, headers)
            delivery = Delivery(event_id, event_type, "webhook", started, status, answer, body)
        with self._lock:
            self.deliveries.append(delivery)
        self._on_change()
        repush = retry and bool(self.repush_delays) and event_type != CALLBACK
        if repush and event_id and not _acked(delivery):
            task = asyncio.create_task(self._repush_later(event_id, self.repush_delays))
            self._repushes.add(task)
            task.add_done_callback(self._repushes.discard)
        return delivery

    async def _repush_later(self, event_id: str, delays: tuple[float, ...]) -> None:
        """Feishu's retry schedule: push again after each delay until one is acked."""
        for delay in delays:
            await asyncio.sleep(delay)
            try:
                delivery = await self.repush(event_id, retry=False)
            except RuntimeError:  # nowhere to push right now: try at the next delay
                continue
            if _acked(delivery):
                return

    def _url_for(self, event_type: str) -> str:
        url = self.card_url if event_type == CALLBACK and self.card_url else None
        url = url or self.webhook_url
        if not url:
            raise RuntimeError(
                "nowhere to push: no long connection is open and webhook_url is not set"
            )
        return url

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, JSON | None]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        timeout = aiohttp.ClientTimeout(total=self.ack_seconds)
        try:
            async with self._session.post(
                url, data=body, headers=headers, timeout=timeout
            ) as response:
                text = await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError):
            return None, None
        try:
            answer = json.loads(text) if text else None
        except ValueError:
            answer = None
        return status, answer if isinstance(answer, dict) else None

    async def repush(self, event_id: str, **overrides: Any) -> Delivery:
        with self._lock:
            payload = self.envelopes.get(event_id)
        if payload is None:
            raise KeyError(f"no event {event_id!r} was pushed")
        return await self.deliver(payload, **overrides)
