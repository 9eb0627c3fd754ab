"""Slack's per-method rate tiers, counted in a sliding real-time window, and scripted failures.

Budgets are Slack's published floors per minute (Tier 1: 1, Tier 2: 20, Tier 3: 50, Tier 4:
100). ``chat.postMessage`` and ``assistant.threads.setStatus`` are "special": about one per
second per channel, with short bursts (three calls per three seconds). Modes: ``"strict"``
uses these budgets, ``"loose"`` (default) ten times them (only a runaway loop sees a 429),
``"off"`` never limits. An over-budget call gets HTTP
429 with ``Retry-After`` = whole seconds until the oldest call in the window leaves it.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

RateMode = Literal["strict", "loose", "off"]

#: Calls per minute of each tier.
TIER_BUDGETS = MappingProxyType({1: 1, 2: 20, 3: 50, 4: 100})

#: Tier of each method the fake serves (``0`` = special: per channel, see ``SPECIAL_BURST``).
METHOD_TIERS = MappingProxyType(
    {
        "apps.connections.open": 3,
        "auth.test": 4,
        "chat.postMessage": 0,
        "chat.update": 3,
        "chat.delete": 3,
        "chat.postEphemeral": 4,
        "chat.startStream": 2,
        "chat.appendStream": 4,
        "chat.stopStream": 2,
        "assistant.threads.setStatus": 0,
        "assistant.threads.setSuggestedPrompts": 4,
        "assistant.threads.setTitle": 4,
        "views.open": 4,
        "views.update": 4,
        "files.info": 4,
        "files.getUploadURLExternal": 4,
        "files.completeUploadExternal": 4,
        "conversations.info": 3,
        "conversations.open": 3,
        "users.info": 4,
        "reactions.add": 3,
        "reactions.remove": 3,
    }
)

LOOSE_FACTOR = 10
#: "Special" methods: one call per second per channel on average, bursts of this many.
SPECIAL_BURST = 3


@dataclass(frozen=True)
class Budget:
    calls: int
    per_seconds: float


@dataclass
class ScriptedFailure:
    error: str
    retry_after: float
    status: int
    times: int


class RateLimiter:
    """Sliding-window call counts per (method[, channel]); ``clock`` is real time by default."""

    def __init__(self, mode: RateMode = "loose", *, clock: Callable[[], float] = time.monotonic):
        self.mode: RateMode = mode
        self._clock = clock
        self._windows: dict[tuple[str, str], deque[float]] = {}
        self._custom: dict[str, Budget] = {}
        self._failures: dict[str, deque[ScriptedFailure]] = {}

    def set_limit(self, method: str, calls: int, per_seconds: float) -> None:
        """Override one method's budget (applies in every mode but ``"off"``)."""
        self._custom[method] = Budget(calls, per_seconds)

    def budget(self, method: str) -> Budget | None:
        if method in self._custom:
            return self._custom[method]
        tier = METHOD_TIERS.get(method)
        if tier is None:
            return None
        factor = LOOSE_FACTOR if self.mode == "loose" else 1
        if tier == 0:
            return Budget(SPECIAL_BURST * factor, float(SPECIAL_BURST))
        return Budget(TIER_BUDGETS[tier] * factor, 60.0)

    def fail_next(
        self, method: str, error: str, *, retry_after: float, status: int, times: int
    ) -> None:
        self._failures.setdefault(method, deque()).append(
            ScriptedFailure(error, retry_after, status, times)
        )

    def scripted(self, method: str) -> ScriptedFailure | None:
        """The failure queued for ``method`` (consuming one use of it), if any."""
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.times -= 1
        if failure.times <= 0:
            queue.popleft()
        return failure

    def check(self, method: str, channel: str | None) -> float | None:
        """Count one call; return ``Retry-After`` seconds when it is over budget."""
        if self.mode == "off" and method not in self._custom:
            return None
        budget = self.budget(method)
        if budget is None:
            return None
        per_channel = METHOD_TIERS.get(method) == 0 and method not in self._custom
        key = (method, (channel or "") if per_channel else "")
        window = self._windows.setdefault(key, deque())
        now = self._clock()
        while window and window[0] <= now - budget.per_seconds:
            window.popleft()
        if len(window) >= budget.calls:
            return float(max(1, math.ceil(window[0] + budget.per_seconds - now)))
        window.append(now)
        return None
