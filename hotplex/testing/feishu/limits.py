"""Feishu's error answers and the limits the fake enforces.

Error codes marked "documented" come from the Open Platform docs as summarised in
``platforms.md`` (B9, B11); the few marked "fake's choice" are not pinned down there and are
only stable within this fake.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass

__all__ = [
    "Clock",
    "FeishuError",
    "Limits",
    "ManualClock",
    "RateWindow",
]

Clock = Callable[[], float]


class ManualClock:
    """A clock (seconds since the epoch) that moves only when told: pass it as ``clock=``
    to test token expiry, the 10-minute streaming timeout or the 14-day limits."""

    def __init__(self, start: float = 1_760_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# tokens and rate limits (documented)
RATE_LIMITED = 99991400  # frequency limit: HTTP 429 + x-ogw-ratelimit-* headers
TOKEN_MISSING = 99991661
TOKEN_INVALID = 99991663
APP_SECRET_INVALID = 10014
# im.v1 (documented)
INVALID_PARAM = 230001
BOT_NOT_IN_CHAT = 230002
MESSAGE_RECALLED = 230011
MESSAGE_RATE_LIMITED = 230020
CONTENT_TOO_LONG = 230025
MESSAGE_TOO_OLD = 230031
EDIT_LIMIT = 230072
CARD_CONTENT_FAILED = 230099
# message resources (fake's choice of the 2340xx family)
RESOURCE_INVALID = 234001
RESOURCE_NOT_IN_MESSAGE = 234003
RESOURCE_TOO_LARGE = 234006
# CardKit (documented)
CARD_EXPIRED = 200750
UUID_REUSED = 200770
STREAMING_TIMEOUT = 200850
CARD_TOO_LARGE = 200860
CARD_PARSE_FAILED = 200621
ELEMENT_ID_DUPLICATE = 300301
UPDATE_MULTI_FALSE = 300302
SCHEMA_NOT_2 = 300303
TOO_MANY_ELEMENTS = 300305
STREAMING_CLOSED = 300309
NOT_TEXT_ELEMENT = 300310
SEQUENCE_NOT_INCREASING = 300317
# delayed card update with a callback token (fake's choice)
CARD_TOKEN_INVALID = 200670
# CardKit (fake's choice)
CARD_NOT_FOUND = 300300
ELEMENT_NOT_FOUND = 300307
# long connection (SDK constants)
WS_SYSTEM_BUSY = 1
WS_INTERNAL_ERROR = 1000040343
WS_EXCEED_CONN_LIMIT = 1000040350


class FeishuError(Exception):
    """An error answer: ``{"code": code, "msg": msg}`` with ``status`` (400 unless rate
    limited, which is 429 with the ``x-ogw-ratelimit-*`` headers; ``reset`` is the seconds
    ``x-ogw-ratelimit-reset`` asks the caller to wait)."""

    def __init__(
        self, code: int, msg: str, *, status: int | None = None, reset: float = 1.0
    ) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.reset = reset
        self.status = status if status is not None else (429 if code == RATE_LIMITED else 400)


@dataclass(frozen=True)
class Limits:
    """What the fake enforces; pass ``Limits(...)`` to loosen or tighten one.

    Rates are counted in a sliding window of one second on the fake's clock.
    """

    token_expire: int = 7200  # seconds in the token answer's ``expire``
    token_renew_before: int = 1800  # a token fetch this close to expiry issues a new token
    chat_messages_per_second: int = 5  # create/reply per chat ("5 QPS per group/user")
    patch_per_second: int = 5  # PATCH per message
    card_ops_per_second: int = 10  # CardKit operations per card entity
    card_bytes: int = 30 * 1024  # card/post message content and CardKit card JSON
    text_bytes: int = 150 * 1024  # text message content
    edits_per_message: int = 20  # PUT edits of a text/post message
    message_patch_days: int = 14  # a card can be patched this long after sending
    card_entity_days: int = 14  # a CardKit entity lives this long
    streaming_seconds: int = 600  # streaming mode closes this long after it was opened
    card_elements: int = 200
    image_bytes: int = 10 * 1024 * 1024
    file_bytes: int = 30 * 1024 * 1024
    uuid_seconds: int = 3600  # message uuid dedupe window
    ack_seconds: float = 3.0  # events and callbacks must be answered within this
    card_token_seconds: int = 1800  # a callback token updates its card this long
    card_token_uses: int = 2  # ... this many times
    connections: int = 50  # long connections per app (more: handshake 514/1000040350)


class RateWindow:
    """At most ``limit`` hits per key in any ``window`` seconds."""

    def __init__(self, limit: int, window: float = 1.0) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[Hashable, deque[float]] = {}

    def hit(self, key: Hashable, now: float) -> bool:
        """Count a hit at ``now``; False (and not counted) when it would exceed the limit."""
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        return True
