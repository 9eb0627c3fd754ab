"""Approvals on the receiving side follow the peer's ``policy``: with ``route_to`` a tool
call of a relayed turn is asked about in a named conversation on B (through core's
approval routing), the asker sees that B waits, and the answer goes on once a person
there decides."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from relay_kit import TOKEN, Bot, running, shown, until, write_config

from hotplex.testing.file_chat import post

ASKING = "filechat:w/D1"
OPS = "filechat:w/OPS"


@pytest.mark.timeout(120)
async def test_a_routed_approval_is_asked_on_b_and_the_answer_follows(tmp_path: Path) -> None:
    a, b = Bot("a", tmp_path / "a"), Bot("b", tmp_path / "b")
    config_a = write_config(a, {"b": b.relay_url})
    config_b = write_config(b, {"a": a.relay_url}, policy={"route_to": OPS})
    async with running(b, config_b), running(a, config_a):
        post(a.chat, id="1", channel="D1", user="U1", text="/relay b RUN: ls -la", direct=True)
        cards = await until(
            lambda: [c for c in b.outbox() if c["method"] == "ask_approval"], 30, "b's card"
        )
        assert cards[0]["address"] == OPS
        await until(
            lambda: any(
                "b waits for approval: Bash" in t for t in shown(a.outbox(), ASKING).values()
            ),
            10,
            "a to show that b waits",
        )
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{b.url}/api/v1/permissions/{cards[0]['text']}",
                json={"decision": "allow"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as response,
        ):
            assert response.status == 200, await response.text()
        final = await until(
            lambda: [t for t in shown(a.outbox(), ASKING).values() if "done: ls -la" in t],
            30,
            "the answer after the approval",
        )
        assert final[0].startswith("**b:** ") and "refused" not in final[0]
