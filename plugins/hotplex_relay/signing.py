"""Signed relay requests: HMAC-SHA256 with the peer's own secret, a replay window and a
nonce store.

A request carries four headers. ``X-Relay-Peer`` is the sender's name as the receiver
knows it, ``X-Relay-Timestamp`` whole Unix seconds, ``X-Relay-Nonce`` 32 random hex
digits, and ``X-Relay-Signature`` ``v1=<hex>``, the HMAC-SHA256 under the secret shared
with that peer of::

    v1 \\n <timestamp> \\n <nonce> \\n <sender> \\n <METHOD> <path> \\n <body bytes>

so the signature covers who sends, when, what and to which route. The route is the
canonical one (:data:`ASK_ROUTE`), not the URL's path, so a proxy that serves a peer under
a path prefix does not break signatures. The receiver takes the
secret of the peer the header names (an unknown name has none: refused), checks the
signature in constant time, the timestamp against its window, and the nonce against the
:class:`NonceStore`. Answers are authenticated the same way (:class:`StreamMac`): the
last line of a streamed answer carries an HMAC over every line before it and the
request's nonce, so the asker knows the whole answer came from the peer it asked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = [
    "ASK_ROUTE",
    "MIRROR_ROUTE",
    "NONCE",
    "PEER",
    "SIGNATURE",
    "TIMESTAMP",
    "NonceStore",
    "Rejected",
    "StreamMac",
    "Verified",
    "sign",
    "signed_headers",
    "verify",
]

#: The routes a request is signed for, whatever path the peer is reached under.
ASK_ROUTE = "/relay/v1/ask"
MIRROR_ROUTE = "/relay/v1/mirror"

PEER, TIMESTAMP, NONCE, SIGNATURE = (
    "X-Relay-Peer",
    "X-Relay-Timestamp",
    "X-Relay-Nonce",
    "X-Relay-Signature",
)
_VERSION = "v1"


class Rejected(Exception):
    """A request that must not run; ``str`` says why (logged and audited, never the secret)."""


def _message(timestamp: int, nonce: str, sender: str, method: str, path: str, body: bytes) -> bytes:
    head = f"{_VERSION}\n{timestamp}\n{nonce}\n{sender}\n{method.upper()} {path}\n"
    return head.encode() + body


def sign(
    secret: bytes, *, timestamp: int, nonce: str, sender: str, method: str, path: str, body: bytes
) -> str:
    """The ``X-Relay-Signature`` value for one request."""
    mac = hmac.new(secret, _message(timestamp, nonce, sender, method, path, body), hashlib.sha256)
    return f"{_VERSION}={mac.hexdigest()}"


def signed_headers(
    secret: bytes,
    *,
    sender: str,
    method: str,
    path: str,
    body: bytes,
    clock: Callable[[], float] = time.time,
) -> dict[str, str]:
    """The four headers of a request from ``sender`` (a fresh nonce, the time now)."""
    timestamp, nonce = int(clock()), secrets.token_hex(16)
    signature = sign(
        secret, timestamp=timestamp, nonce=nonce, sender=sender, method=method, path=path, body=body
    )
    return {PEER: sender, TIMESTAMP: str(timestamp), NONCE: nonce, SIGNATURE: signature}


class NonceStore:
    """Nonces seen within the replay window, in memory and bounded.

    Why memory is enough: a nonce only has to be remembered while its timestamp is inside
    the window (older requests are refused by their timestamp), so the store holds at most
    ``window`` seconds of requests, and ``max_entries`` bounds it further (past it, new
    requests are refused, never old nonces forgotten early). A restart empties it, so it
    also refuses every request signed before it was created (``opened``): a request
    captured before a restart cannot be replayed after it.
    """

    def __init__(
        self,
        window: float,
        *,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window = window
        self.max_entries = max_entries
        self._clock = clock
        self.opened = int(clock())
        self._seen: OrderedDict[str, float] = OrderedDict()  # nonce -> when it expires

    def __len__(self) -> int:
        return len(self._seen)

    def check(self, nonce: str, timestamp: int) -> None:
        """Take ``nonce`` once; raise :class:`Rejected` for a replay, an old or future
        timestamp, or a full store."""
        now = self._clock()
        if timestamp < self.opened:
            raise Rejected("signed before this instance started (a replay after a restart?)")
        if abs(now - timestamp) > self.window:
            raise Rejected(f"timestamp outside the {self.window:g} s replay window")
        while self._seen and next(iter(self._seen.values())) < now:
            self._seen.popitem(last=False)
        if nonce in self._seen:
            raise Rejected("nonce already used (a replayed request)")
        if len(self._seen) >= self.max_entries:
            raise Rejected("too many requests inside the replay window")
        # expire in insertion order: every entry lives exactly one window past its arrival
        self._seen[nonce] = now + 2 * self.window


@dataclass(frozen=True, slots=True)
class Verified:
    sender: str
    nonce: str
    timestamp: int


def verify(
    headers: Mapping[str, str],
    *,
    method: str,
    path: str,
    body: bytes,
    secret_for: Callable[[str], bytes | None],
    nonces: NonceStore,
) -> Verified:
    """Check one request's headers; the sender, or :class:`Rejected` saying why."""
    sender = headers.get(PEER, "")
    raw_ts, nonce, signature = (headers.get(h, "") for h in (TIMESTAMP, NONCE, SIGNATURE))
    if not (sender and raw_ts and nonce and signature):
        raise Rejected("unsigned request (X-Relay-Peer, -Timestamp, -Nonce, -Signature)")
    if len(nonce) != 32 or any(c not in "0123456789abcdef" for c in nonce):
        raise Rejected("malformed nonce")
    try:
        timestamp = int(raw_ts)
    except ValueError:
        raise Rejected("malformed timestamp") from None
    secret = secret_for(sender)
    if secret is None:
        raise Rejected(f"unknown peer {sender[:64]!r}")
    expected = sign(
        secret, timestamp=timestamp, nonce=nonce, sender=sender, method=method, path=path, body=body
    )
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise Rejected(f"bad signature for peer {sender!r}")
    nonces.check(nonce, timestamp)  # only a genuine request uses up its nonce
    return Verified(sender, nonce, timestamp)


class StreamMac:
    """The running HMAC of a streamed answer: ``update`` with every line's bytes as sent;
    ``hexdigest`` goes into the last line. Keyed with the peer's secret and bound to the
    request's nonce, so an answer cannot be replayed for another request."""

    def __init__(self, secret: bytes, nonce: str) -> None:
        self._mac = hmac.new(secret, f"{_VERSION}-answer\n{nonce}\n".encode(), hashlib.sha256)

    def update(self, line: bytes) -> None:
        self._mac.update(line)

    def hexdigest(self) -> str:
        return self._mac.hexdigest()

    def matches(self, digest: str) -> bool:
        return hmac.compare_digest(self.hexdigest().encode(), digest.encode())
