"""Token buckets: :class:`RateLimiter` (``burst`` tokens per name, refilled at
``per_minute``) and :class:`KeyLimit`, one kind of traffic limited per API key with the
429 it answers.

The gateway keeps two kinds apart, so one application serving many users through one key
is not refused for its connections because its frames were counted with them:
``server.rate_limit.requests`` (every HTTP request and WebSocket handshake) and
``server.rate_limit.frames`` (every WebSocket frame, over all the key's sockets). Names are
key names from the configuration (plus ``local`` and ``admin``), so those buckets are
bounded; a limiter keyed by client address prunes itself (``max_names``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from hotplex.gateway.frames import GatewayError

__all__ = ["KeyLimit", "RateLimiter"]


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self,
        per_minute: int,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_names: int | None = None,
    ) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._max_names = max_names
        self._buckets: dict[str, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def _refilled(self, name: str, now: float) -> _Bucket | None:
        bucket = self._buckets.get(name)
        if bucket is not None:
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
        return bucket

    def wait(self, name: str) -> float:
        """Seconds until ``name`` has a token (0.0: it has one now); takes nothing."""
        if not self.enabled:
            return 0.0
        bucket = self._refilled(name, self._clock())
        if bucket is None or bucket.tokens >= 1.0:
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    def take(self, name: str) -> float:
        """Take a token for ``name``: 0.0 when allowed, else the seconds until one is free."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        bucket = self._refilled(name, now)
        if bucket is None:
            self._prune(now)
            bucket = self._buckets[name] = _Bucket(self._burst, now)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    def _prune(self, now: float) -> None:
        """Room for one more name: drop the buckets that are full again, then the oldest."""
        if self._max_names is None or len(self._buckets) < self._max_names:
            return
        for name, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.updated) * self._rate >= self._burst:
                del self._buckets[name]
        while len(self._buckets) >= self._max_names:
            oldest = min(self._buckets, key=lambda n: self._buckets[n].updated)
            del self._buckets[oldest]


class KeyLimit:
    """One kind of traffic (``what``), limited per API key by the settings at ``path``."""

    def __init__(
        self,
        path: str,
        what: str,
        *,
        per_minute: int,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.what = what
        self.per_minute = per_minute
        self.burst = burst
        self.limiter = RateLimiter(per_minute, burst, clock=clock)

    def take(self, key_name: str) -> GatewayError | None:
        """None when ``key_name`` may go on, else the 429 that names this limit."""
        wait = self.limiter.take(key_name)
        if not wait:
            return None
        seconds = max(1, math.ceil(wait))
        return GatewayError(
            "rate_limited",
            f"Too many {self.what} for API key {key_name!r}: {self.path} allows "
            f"{self.per_minute} a minute in bursts of {self.burst}. Retry in {seconds} s, or "
            f"raise {self.path}.per_minute and {self.path}.burst in the server's config.",
            status=429,
            retryable=True,
            retry_after=wait,
            details={"limit": self.path, "retry_after": seconds},
        )
