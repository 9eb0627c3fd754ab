"""The gateway's small parts on their own: the token bucket and the outbox."""

from __future__ import annotations

import pytest

from hotplex.gateway.outbox import Outbox
from hotplex.gateway.ratelimit import RateLimiter


def test_token_bucket_refills_at_the_configured_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(60, 2, clock=lambda: now[0])  # one token a second
    assert limiter.take("a") == 0.0 and limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(1.0)
    assert limiter.take("b") == 0.0  # keys have their own buckets
    now[0] = 0.5
    assert limiter.take("a") == pytest.approx(0.5)
    now[0] = 1.0
    assert limiter.take("a") == 0.0
    now[0] = 100.0  # the bucket holds at most the burst
    assert [limiter.take("a") for _ in range(3)][:2] == [0.0, 0.0]
    assert limiter.take("a") > 0


def test_a_zero_rate_turns_the_limit_off() -> None:
    limiter = RateLimiter(0, 1)
    assert not limiter.enabled
    assert all(limiter.take("a") == 0.0 for _ in range(1000))


def test_wait_takes_nothing() -> None:
    now = [0.0]
    limiter = RateLimiter(60, 1, clock=lambda: now[0])
    assert limiter.wait("a") == 0.0 and limiter.wait("a") == 0.0  # unknown: a full bucket
    assert limiter.take("a") == 0.0
    assert limiter.wait("a") == pytest.approx(1.0) and limiter.wait("a") == pytest.approx(1.0)
    now[0] = 1.0
    assert limiter.wait("a") == 0.0


def test_a_limiter_keyed_by_address_stays_bounded() -> None:
    now = [0.0]
    limiter = RateLimiter(60, 2, clock=lambda: now[0], max_names=3)
    for address in ("a", "b", "c"):
        limiter.take(address)
    now[0] = 10.0  # a, b and c are full again: forgetting them loses nothing
    limiter.take("d")
    assert len(limiter) == 1
    for address in ("e", "f"):
        limiter.take(address)
        limiter.take(address)
    now[0] = 10.5  # none is full: the oldest goes
    limiter.take("g")
    assert len(limiter) == 3
    assert limiter.wait("f") > 0  # the most recent ones are remembered


async def test_outbox_overflows_once_and_then_refuses() -> None:
    calls: list[str] = []
    box = Outbox(2, on_overflow=lambda: calls.append("overflow"), put_timeout=0.01)
    assert box.offer("1") and box.offer("2")
    assert not box.offer("3")
    assert not box.offer("4") and calls == ["overflow"]
    assert box.closed and box.overflowed
    assert not await box.put("5")
    assert await box.get(1.0) == "1"


async def test_outbox_put_waits_for_room_a_bounded_time() -> None:
    calls: list[str] = []
    box = Outbox(1, on_overflow=lambda: calls.append("overflow"), put_timeout=0.05)
    assert await box.put("1")
    assert not await box.put("2")  # nobody took "1" in time: the client is stuck
    assert calls == ["overflow"]
