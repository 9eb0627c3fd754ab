"""Failed authentications are throttled per client address; loopback trust never extends
to a request that a reverse proxy relayed."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import aiohttp
import pytest
from gateway_kit import ADMIN_TOKEN, HarnessFactory, auth

from hotplex.config.server import FailedAuthLimit

EXECUTE = {"session_id": "s1", "prompt": "hi"}
BURST = FailedAuthLimit().burst


def wrong() -> dict[str, str]:
    return {"Authorization": f"Bearer wrong-{secrets.token_hex(8)}"}  # a new guess each time


async def status_of(h: Any, path: str, headers: dict[str, str]) -> tuple[int, Any, Any]:
    async with h.client.post(path, json=EXECUTE, headers=headers) as response:
        body = await response.json() if response.status == 429 else None
        return response.status, response.headers.get("Retry-After"), body


async def test_failed_authentications_from_one_address_get_429(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        for _ in range(BURST):
            status, _, _ = await status_of(h, "/api/v1/execute", wrong())
            assert status == 401
        status, retry_after, body = await status_of(h, "/api/v1/execute", wrong())
        assert status == 429 and retry_after is not None and int(retry_after) >= 1
        data = body["data"]
        assert data["code"] == "rate_limited" and data["limit"] == "server.failed_auth"
        assert "server.failed_auth" in data["message"]
        # while throttled, the key is not even looked at: the right one waits too
        status, _, _ = await status_of(h, "/api/v1/execute", auth("alice"))
        assert status == 429
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await h.ws("alice")
        assert refused.value.status == 429
        # the admin API and /metrics share the throttle
        async with h.client.get("/admin/v1/stats", headers=auth("alice")) as response:
            assert response.status == 429
        # another address is not affected
        connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with aiohttp.ClientSession(connector=connector) as other:
            url = h.client.make_url("/api/v1/sessions/nope/interrupt")
            async with other.post(url, headers=auth("bob")) as response:
                assert response.status == 404


async def test_admin_token_guesses_are_throttled(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        for _ in range(BURST):
            async with h.client.get("/admin/v1/stats", headers=wrong()) as response:
                assert response.status == 401
        async with h.client.get("/metrics", headers=wrong()) as response:
            assert response.status == 429 and int(response.headers["Retry-After"]) >= 1
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with h.client.get("/admin/v1/stats", headers=headers) as response:
            assert response.status == 429


async def test_successes_spend_nothing(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        for _ in range(3 * BURST):
            async with h.post("/api/v1/sessions/nope/interrupt", key="bob") as response:
                assert response.status == 404
        status, _, _ = await status_of(h, "/api/v1/execute", wrong())
        assert status == 401


async def test_the_throttle_can_be_turned_off(gateway: HarnessFactory) -> None:
    async with gateway({"failed_auth": {"per_minute": 0}}) as h:
        for _ in range(2 * BURST):
            status, _, _ = await status_of(h, "/api/v1/execute", wrong())
            assert status == 401


@pytest.mark.parametrize(
    "header",
    [
        {"X-Forwarded-For": "203.0.113.7"},
        {"Forwarded": "for=203.0.113.7;proto=https"},
        {"X-Real-IP": "203.0.113.7"},
    ],
)
async def test_loopback_trust_is_refused_to_proxied_requests(
    gateway: HarnessFactory, header: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    async with gateway(keys=False) as h:
        # straight from loopback: trusted as `local`, and as an admin
        async with h.post("/api/v1/sessions/nope/interrupt", key=None) as response:
            assert response.status == 404
        async with h.client.get("/admin/v1/stats") as response:
            assert response.status == 200
        # the same through a reverse proxy on this machine: nobody is trusted
        with caplog.at_level(logging.WARNING, logger="hotplex.gateway.auth"):
            async with h.post("/api/v1/sessions/nope/interrupt", key=None, headers=header) as r:
                assert r.status == 401
            async with h.client.get("/admin/v1/stats", headers=header) as response:
                assert response.status == 401
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await h.ws(key=None, headers=header)
            assert refused.value.status == 401
        (name,) = header
        assert f"relayed by a proxy ({name} header)" in caplog.text
        assert "server.api_keys" in caplog.text


async def test_keys_still_work_through_a_proxy(
    gateway: HarnessFactory, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"X-Forwarded-For": "203.0.113.7"}
    with caplog.at_level(logging.WARNING, logger="hotplex.gateway.auth"):
        async with gateway() as h:
            async with h.post("/api/v1/sessions/nope/interrupt", headers=headers) as response:
                assert response.status == 404
            admin = {"Authorization": f"Bearer {ADMIN_TOKEN}", **headers}
            async with h.client.get("/admin/v1/stats", headers=admin) as response:
                assert response.status == 200
        # keys without an admin token: a proxied key holder is simply not an admin
        async with (
            gateway({"admin_token": None}) as h,
            h.post("/api/v1/sessions/nope/interrupt", headers=headers) as response,
        ):
            assert response.status == 404
    assert "loopback trust" not in caplog.text  # nothing was refused that was configured
