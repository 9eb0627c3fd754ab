"""The per-key rate limits at their defaults fit one application serving 100 users through
one key; connection attempts and frames are counted apart; a 429 names the limit to raise."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from gateway_kit import HarnessFactory, frames_until, is_done

from hotplex.config import load_settings
from hotplex.config.server import FrameLimit, RequestLimit
from hotplex.errors import ConfigError

#: the limits at their defaults (the kit turns them off unless told otherwise)
DEFAULTS: dict[str, Any] = {"rate_limit": {"enabled": True}}
USERS = 100


async def test_100_users_on_one_key_connect_and_each_runs_a_prompt(
    gateway: HarnessFactory,
) -> None:
    # every user's turn runs at the same moment: one agent each (engine.max_sessions bounds
    # the agents, not the gateway; at its default of 32 the 33rd concurrent turn is refused)
    async with gateway(DEFAULTS, engine={"max_sessions": USERS}) as h:
        sockets = await asyncio.gather(*(h.ws("alice") for _ in range(USERS)))
        assert len(sockets) == USERS  # none was refused with 429

        async def user(i: int, ws: aiohttp.ClientWebSocketResponse) -> str:
            await ws.send_json({"type": "execute", "session_id": f"u{i}", "prompt": f"hi {i}"})
            frames = await frames_until(ws, is_done(f"u{i}"), timeout=60)
            errors = [f for f in frames if f["type"] == "error"]
            assert not errors, errors
            return next(f["data"]["text"] for f in frames if f["type"] == "text")

        answers = await asyncio.gather(*(user(i, ws) for i, ws in enumerate(sockets)))
        assert answers == [f"echo: hi {i}" for i in range(USERS)]


def refill(limit: RequestLimit | FrameLimit, seconds: float) -> float:
    """Tokens a bucket gains in ``seconds`` (the flood takes time; the bucket refills)."""
    return limit.per_minute / 60.0 * seconds + 1


async def test_a_flood_of_connections_gets_429_naming_the_limit(gateway: HarnessFactory) -> None:
    limit = RequestLimit()
    async with gateway(DEFAULTS) as h:
        allowed = 0
        start = time.monotonic()
        for _ in range(3 * limit.burst):  # bounded: the refill is far slower than this loop
            async with h.post("/api/v1/sessions/nope/interrupt") as response:
                if response.status == 429:
                    retry_after = int(response.headers["Retry-After"])
                    data = (await response.json())["data"]
                    break
                assert response.status == 404
                allowed += 1
        else:
            pytest.fail("no 429 after three bursts of requests")
        assert limit.burst <= allowed <= limit.burst + refill(limit, time.monotonic() - start)
        assert retry_after >= 1
        assert data["code"] == "rate_limited" and data["retryable"] is True
        assert data["limit"] == "server.rate_limit.requests" and data["retry_after"] >= 1
        assert "server.rate_limit.requests.per_minute" in data["message"]
        assert "'alice'" in data["message"]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await h.ws("alice")
        assert refused.value.status == 429
        # the other key has its own bucket
        ws = await h.ws("bob")
        await ws.send_json({"type": "ping"})
        assert await ws.receive_json(timeout=5) == {"type": "pong"}


async def test_a_flood_of_frames_gets_an_error_naming_the_frame_limit(
    gateway: HarnessFactory,
) -> None:
    limit = FrameLimit()
    batch = 200
    async with gateway(DEFAULTS) as h:
        ws = await h.ws()
        pongs = 0
        error: dict[str, Any] | None = None
        start = time.monotonic()
        for _ in range(3 * limit.burst // batch):  # bounded, as above
            for _ in range(batch):
                await ws.send_json({"type": "ping"})
            for _ in range(batch):
                frame = await ws.receive_json(timeout=5)
                if frame["type"] == "pong" and error is None:
                    pongs += 1
                elif error is None:
                    error = frame
            if error is not None:
                break
        assert error is not None, "no error after three bursts of frames"
        assert limit.burst <= pongs <= limit.burst + refill(limit, time.monotonic() - start)
        data = error["data"]
        assert error["type"] == "error" and data["code"] == "rate_limited"
        assert data["limit"] == "server.rate_limit.frames" and data["retry_after"] >= 1
        assert "server.rate_limit.frames.per_minute" in data["message"]
        # frames spent no connection attempts: the key still connects
        more = await h.ws()
        assert not more.closed


async def test_frames_and_connection_attempts_are_counted_apart(gateway: HarnessFactory) -> None:
    limits = {"requests": {"per_minute": 1, "burst": 2}, "frames": {"per_minute": 1, "burst": 3}}
    async with gateway({"rate_limit": limits}) as h:
        first = await h.ws()  # request token 1 of 2
        for _ in range(3):  # every frame token
            await first.send_json({"type": "ping"})
            assert await first.receive_json(timeout=5) == {"type": "pong"}
        second = await h.ws()  # request token 2: frames did not spend it
        await second.send_json({"type": "ping"})
        frame = await second.receive_json(timeout=5)
        assert frame["data"]["limit"] == "server.rate_limit.frames"  # shared by the key
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await h.ws()
        assert refused.value.status == 429


def test_the_old_flat_keys_say_where_they_went() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(None, text="server: {rate_limit: {per_minute: 0}}", environ={})
    message = str(error.value)
    assert "server.rate_limit" in message
    assert "requests.per_minute" in message and "frames.per_minute" in message


def test_disabled_turns_both_limits_off() -> None:
    settings = load_settings(
        None, text="server: {rate_limit: {enabled: false}}", environ={}
    ).settings
    assert settings.server.rate_limit.enabled is False
