"""What keeps bots from running away with each other: the loop guard over a relayed
message's origin chain, the per-peer rate limit and the per-peer circuit breaker."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Breaker", "Hop", "RateLimit", "chain_problem", "parse_chain"]


@dataclass(frozen=True, slots=True)
class Hop:
    """One step of a relayed message's way: the bot (``peer``, its relay name) and the
    conversation there that asked."""

    peer: str
    conversation: str

    def to_json(self) -> dict[str, str]:
        return {"peer": self.peer, "conversation": self.conversation}

    def __str__(self) -> str:
        return f"{self.peer}:{self.conversation}"


def parse_chain(raw: Any) -> tuple[Hop, ...]:
    """The chain of a request body; ValueError when it is not a list of hops."""
    if not isinstance(raw, list) or not raw or len(raw) > 64:
        raise ValueError("chain must be a non-empty list of at most 64 hops")
    hops = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise ValueError("each hop is an object with peer and conversation")
        peer, conversation = item.get("peer"), item.get("conversation")
        if not isinstance(peer, str) or not isinstance(conversation, str) or not peer:
            raise ValueError("each hop names its peer and conversation as strings")
        hops.append(Hop(peer[:128], conversation[:512]))
    return tuple(hops)


def chain_problem(chain: Sequence[Hop], *, target: str, hop_limit: int) -> str | None:
    """Why a message with this origin ``chain`` must not go to the bot ``target`` (as the
    next hop), or None. A conversation of ``target`` already in the chain means the work
    would come back to where it was asked (A -> B -> A), whatever conversation it would land
    in; more than ``hop_limit`` hops means it wandered too far."""
    way = " -> ".join([*(hop.peer for hop in chain), target])
    if any(hop.peer == target for hop in chain):
        return f"loop: {target} is already in the chain ({way})"
    if len(chain) > hop_limit:
        return f"hop limit: {len(chain)} hops > hop_limit {hop_limit} ({way})"
    return None


class RateLimit:
    """A token bucket: ``burst`` requests at once, refilled at ``rate`` a second."""

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate, self.burst = rate, burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def take(self) -> float:
        """0.0 when a request may go now (one token used), else the seconds until one may."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate


BreakerState = Literal["closed", "open", "half_open"]


class Breaker:
    """A circuit breaker per peer: ``failures`` failed requests in a row open it; while
    open, requests fail at once (the asker is told when it may try again); after
    ``reset`` seconds one trial request goes through (half open), and its success closes
    the breaker, its failure opens it again."""

    def __init__(
        self, failures: int, reset: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failures < 1 or reset <= 0:
            raise ValueError("failures must be at least 1 and reset positive")
        self.failures, self.reset = failures, reset
        self._clock = clock
        self._count = 0
        self._opened: float | None = None
        self._trial = False
        self.last_error: str | None = None
        self.last_success: float | None = None

    @property
    def state(self) -> BreakerState:
        if self._opened is None:
            return "closed"
        return "half_open" if self._clock() - self._opened >= self.reset else "open"

    def allow(self) -> float:
        """0.0 when a request may go now, else the seconds the breaker stays open."""
        state = self.state
        if state == "closed":
            return 0.0
        if state == "half_open" and not self._trial:
            self._trial = True
            return 0.0
        assert self._opened is not None
        return max(0.1, self.reset - (self._clock() - self._opened))

    def succeeded(self) -> None:
        self._count, self._opened, self._trial = 0, None, False
        self.last_success = time.time()

    def failed(self, error: str) -> None:
        self.last_error = error
        self._count += 1
        if self._trial or self._count >= self.failures:
            self._opened, self._trial = self._clock(), False

    def health(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "consecutive_failures": self._count,
            "last_error": self.last_error,
            "last_success": self.last_success,
        }
