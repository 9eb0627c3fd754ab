"""A binding across two daemons: a file-chat conversation on A bound to one on B (each bot
holds its side, ``b@...`` on A and ``a@...`` on B): people's messages and the agent's
answers show on the other bot, attributed; a bot posts a peer's mirrored message only into
a conversation it bound itself."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from hotplex_relay.signing import MIRROR_ROUTE, signed_headers
from relay_kit import TOKEN, Bot, admin, running, secret, shown, until, write_config

from hotplex.testing.file_chat import post

ON_A, ON_B = "filechat:w/D1", "filechat:w/E1"


async def mirror_by_hand(sender: str, to: Bot, conversation: str, origin: str) -> int:
    raw = json.dumps({"conversation": conversation, "text": "injected", "from": origin}).encode()
    headers = signed_headers(
        secret(sender, to.name).encode(), sender=sender, method="POST", path=MIRROR_ROUTE,
        body=raw,
    )  # fmt: skip
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{to.relay_url}/mirror", data=raw, headers=headers) as response,
    ):
        return response.status


@pytest.mark.timeout(120)
async def test_a_binding_across_two_bots_mirrors_both_ways(tmp_path: Path) -> None:
    a, b = Bot("a", tmp_path / "a"), Bot("b", tmp_path / "b")
    config_a = write_config(a, {"b": b.relay_url})
    config_b = write_config(b, {"a": a.relay_url})
    async with running(b, config_b), running(a, config_a):
        await admin(a, "POST", "/admin/v1/relay/bindings", {"a": ON_A, "b": f"b@{ON_B}"})
        # b has not bound its side yet: it posts nothing a sends for that conversation
        assert await mirror_by_hand("a", b, ON_B, ON_A) == 403
        await admin(b, "POST", "/admin/v1/relay/bindings", {"a": ON_B, "b": f"a@{ON_A}"})
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{a.url}/admin/v1/relay/bindings",
                json={"a": ON_A, "b": f"z@{ON_B}"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as response,
        ):
            assert response.status == 400 and "no relay peer named 'z'" in await response.text()

        post(a.chat, id="1", channel="D1", user="U1", text="hello from a", direct=True)
        wanted_on_b = {
            f"**filechat:U1** in {ON_A} on a:\nhello from a",
            f"**agent** in {ON_A} on a:\necho: hello from a",
        }
        await until(
            lambda: wanted_on_b <= set(shown(b.outbox(), ON_B).values()), 20, "a's side on b"
        )
        post(b.chat, id="7", channel="E1", user="U7", text="hello from b", direct=True)
        wanted_on_a = {
            f"**filechat:U7** in {ON_B} on b:\nhello from b",
            f"**agent** in {ON_B} on b:\necho: hello from b",
        }
        await until(
            lambda: wanted_on_a <= set(shown(a.outbox(), ON_A).values()), 20, "b's side on a"
        )
        # each once, nothing echoed back
        on_b = [t for t in shown(b.outbox(), ON_B).values() if " on a:" in t]
        on_a = [t for t in shown(a.outbox(), ON_A).values() if " on b:" in t]
        assert sorted(on_b) == sorted(wanted_on_b) and sorted(on_a) == sorted(wanted_on_a)
        assert not any("injected" in t for t in shown(b.outbox(), ON_B).values())
