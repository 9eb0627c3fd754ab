"""Bad input at the door: keys, origins, hosts, sizes, floods, CORS, slow readers."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from gateway_kit import KEYS, WAIT, HarnessFactory, frames_until, is_done

from hotplex.config import load_settings
from hotplex.errors import ConfigError
from hotplex.events import agent_event
from hotplex.testing.fakes import echo_turn

EXECUTE = {"session_id": "s1", "prompt": "hi"}


async def handshake_status(h: Any, **kwargs: Any) -> int:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await h.ws(**kwargs)
    return refused.value.status


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key-0123456789"},
        {"Authorization": f"Bearer {KEYS['alice'][:-1]}"},  # a prefix of a valid key
        {"Authorization": f"Bearer {KEYS['alice']}x"},
        {"X-API-Key": "nope"},
        {"Authorization": f"Basic {KEYS['alice']}"},
    ],
)
async def test_missing_or_wrong_keys_get_a_bare_401(
    gateway: HarnessFactory, headers: dict[str, str]
) -> None:
    async with gateway() as h:
        for path in ("/api/v1/execute", "/api/v1/sessions/s1/interrupt", "/api/v1/permissions/p"):
            async with h.post(path, EXECUTE, key=None, headers=headers) as response:
                assert response.status == 401
                assert "key" not in (await response.text()).lower()
        assert await handshake_status(h, key=None, headers=headers) == 401


async def test_both_header_forms_and_the_subprotocol_carry_the_key(
    gateway: HarnessFactory,
) -> None:
    async with gateway() as h:
        headers = {"X-API-Key": KEYS["bob"]}
        async with h.post("/api/v1/execute", EXECUTE, key=None, headers=headers) as response:
            assert response.status == 200
            await response.read()
        ws = await h.ws(key=None, protocols=("hotplex.v1", f"hotplex-key.{KEYS['alice']}"))
        assert ws.protocol == "hotplex.v1"  # the key is never echoed
        await ws.send_json({"type": "execute", "session_id": "s1", "prompt": "hi"})
        assert (await frames_until(ws, is_done()))[-1]["data"]["status"] == "ok"
        assert h.engine.get(h.engine_id("alice", "s1")) is not None
        bad = ("hotplex.v1", "hotplex-key.wrong")
        assert await handshake_status(h, key=None, protocols=bad) == 401
        # a key offered without hotplex.v1 is refused (and never logged)
        alone = (f"hotplex-key.{KEYS['alice']}",)
        assert await handshake_status(h, key=None, protocols=alone) == 400


async def test_origin_allow_list_on_the_handshake_and_the_api(gateway: HarnessFactory) -> None:
    async with gateway({"allowed_origins": ["https://chat.example.com"]}) as h:
        evil = {"Origin": "https://evil.example.com"}
        assert await handshake_status(h, headers=evil) == 403
        assert await handshake_status(h, headers={"Origin": "null"}) == 403
        async with h.post("/api/v1/execute", EXECUTE, headers=evil) as response:
            assert response.status == 403
        for origin in ("https://chat.example.com", f"http://{h.client.host}:{h.client.port}"):
            ws = await h.ws(headers={"Origin": origin})
            await ws.send_json({"type": "ping"})
            assert await ws.receive_json(timeout=WAIT) == {"type": "pong"}


async def test_cors_echoes_only_listed_origins(gateway: HarnessFactory) -> None:
    allowed = "https://chat.example.com"
    async with gateway({"allowed_origins": [allowed]}) as h:
        preflight = {"Access-Control-Request-Method": "POST"}
        async with h.client.options(
            "/api/v1/execute", headers={**preflight, "Origin": "https://evil.example.com"}
        ) as response:
            assert response.status == 403
            assert "Access-Control-Allow-Origin" not in response.headers
        async with h.client.options(
            "/api/v1/execute", headers={**preflight, "Origin": allowed}
        ) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == allowed
            assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
            assert "Access-Control-Allow-Credentials" not in response.headers
        async with h.post("/api/v1/execute", EXECUTE, headers={"Origin": allowed}) as response:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == allowed
            await response.read()


async def test_without_keys_loopback_is_local_and_foreign_hosts_are_refused(
    gateway: HarnessFactory,
) -> None:
    async with gateway(keys=False) as h:
        async with h.post("/api/v1/execute", EXECUTE, key=None) as response:
            assert response.status == 200
            await response.read()
        assert h.engine.get(h.engine_id("local", "s1")) is not None
        rebound = {"Host": f"attacker.example:{h.client.port}"}
        async with h.post("/api/v1/execute", EXECUTE, key=None, headers=rebound) as response:
            assert response.status == 403
        assert await handshake_status(h, key=None, headers=rebound) == 403
        ws = await h.ws(key=None, headers={"Host": f"localhost:{h.client.port}"})
        await ws.send_json({"type": "ping"})
        assert await ws.receive_json(timeout=WAIT) == {"type": "pong"}


async def test_oversize_body_gets_413(gateway: HarnessFactory) -> None:
    async with gateway({"max_body_bytes": 2048}) as h:
        body = {"session_id": "s1", "prompt": "x" * 4096}
        async with h.post("/api/v1/execute", body) as response:
            assert response.status == 413
            assert (await response.json())["data"]["code"] == "payload_too_large"

        async def chunks() -> Any:  # no Content-Length: the limit applies while reading
            for _ in range(4):
                yield b" " * 1024

        async with h.post("/api/v1/execute", data=chunks()) as response:
            assert response.status == 413
        async with h.post("/api/v1/permissions/p", data=b"{" + b" " * 3000 + b"}") as response:
            assert response.status == 413


async def test_oversize_frame_closes_with_1009(gateway: HarnessFactory) -> None:
    async with gateway({"max_frame_bytes": 2048}) as h:
        ws = await h.ws()
        await ws.send_json({"type": "execute", "prompt": "x" * 4096})
        message = await ws.receive(timeout=WAIT)
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert message.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
        ok = await h.ws()  # the server is fine
        await ok.send_json({"type": "ping"})
        assert await ok.receive_json(timeout=WAIT) == {"type": "pong"}


async def test_rate_limit_per_key(gateway: HarnessFactory) -> None:
    limits = {"requests": {"per_minute": 1, "burst": 3}, "frames": {"per_minute": 1, "burst": 2}}
    async with gateway({"rate_limit": limits}) as h:
        for _ in range(3):
            async with h.post("/api/v1/sessions/nope/interrupt") as response:
                assert response.status == 404
        async with h.post("/api/v1/sessions/nope/interrupt") as response:
            assert response.status == 429
            assert int(response.headers["Retry-After"]) >= 1
            assert (await response.json())["data"]["code"] == "rate_limited"
        assert await handshake_status(h) == 429
        # another key is not affected; on its socket, frames take tokens of their own bucket
        ws = await h.ws("bob")
        for _ in range(2):
            await ws.send_json({"type": "ping"})
            assert await ws.receive_json(timeout=WAIT) == {"type": "pong"}
        await ws.send_json({"type": "ping", "request_id": "late"})
        frame = await ws.receive_json(timeout=WAIT)
        assert frame["type"] == "error" and frame["request_id"] == "late"
        assert frame["data"]["code"] == "rate_limited" and frame["data"]["retryable"] is True


@pytest.mark.parametrize(
    "keys",
    [
        [{"name": "admin", "key": "k-0123456789abcdef"}],
        [{"name": "a/b", "key": "k-0123456789abcdef"}],
        [{"name": "a", "key": "k-0123456789abcdef"}, {"name": "a", "key": "k2-0123456789abcdef"}],
    ],
)
def test_api_key_names_must_be_usable_in_addresses(keys: list[dict[str, str]]) -> None:
    with pytest.raises(ConfigError, match="api_keys"):
        load_settings(None, text=f"server: {{api_keys: {keys}}}", environ={})


async def test_a_websocket_that_stops_reading_is_dropped_and_others_go_on(
    gateway: HarnessFactory, wait_for: Callable[..., Awaitable[None]]
) -> None:
    async with gateway({"client_queue": 8}) as h:
        noise = base64.b64encode(os.urandom(48 * 1024)).decode()

        def turns(prompt: str) -> list[Any]:
            if prompt != "flood":
                return list(echo_turn(prompt))
            return [agent_event("text", text=f"{i}:{noise}") for i in range(400)]

        h.provider.default = turns
        slow = await h.ws(compress=0)
        await slow.send_json({"type": "execute", "session_id": "slow", "prompt": "flood"})
        # ... and never reads. Another client's turn completes meanwhile.
        fast = await h.ws("bob")
        started = asyncio.get_running_loop().time()
        await fast.send_json({"type": "execute", "session_id": "fast", "prompt": "hi"})
        frames = await frames_until(fast, is_done(), timeout=2.0)
        assert frames[-1]["data"]["status"] == "ok"
        assert asyncio.get_running_loop().time() - started < 2.0
        await wait_for(lambda: h.gateway.slow_disconnects == 1)
        # the flooding turn was never held up by its reader
        sid = h.engine_id("alice", "slow")
        await h.until_stored(lambda stored: sum(e.session_id == sid for e in stored) >= 402)
        assert h.storage.of(sid)[-1].type == "done"
        # the stuck socket was closed: the client ends after its backlog
        async with asyncio.timeout(WAIT * 2):
            while (await slow.receive()).type is aiohttp.WSMsgType.TEXT:
                pass
        assert slow.closed
