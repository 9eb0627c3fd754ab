"""B's ``/relay/v1/ask`` runs nothing for a request that is unsigned, forged, signed by a
peer B does not know (or with another peer's secret), expired, or replayed; a request whose
origin chain already holds B, or that went past ``hop_limit``, is dropped with a
``relay.dropped`` audit entry."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from relay_kit import (
    Bot,
    admin,
    ask_body,
    audit,
    post_ask,
    running,
    secret,
    signed,
    until,
    write_config,
)


async def turns(b: Bot) -> int:
    sessions = (await admin(b, "GET", "/admin/v1/sessions"))["sessions"]
    return sum(int(s["turns"]) for s in sessions)


@pytest.mark.timeout(90)
async def test_bad_requests_are_refused_with_nothing_run(tmp_path: Path) -> None:
    b = Bot("b", tmp_path / "b")
    config = write_config(
        b,
        {"a": "http://127.0.0.1:9/relay/v1", "c": "http://127.0.0.1:9/x"},
        rate_limit={"rate": 0.001, "burst": 6},
    )
    async with running(b, config):
        body = ask_body("a", "hello")
        raw, headers = signed("a", b, body)
        unsigned = {"Content-Type": "application/json"}
        forged_raw = raw.replace(b"hello", b"rm -rf")
        _, wrong_key = signed("a", b, body, key="not-the-secret")
        _, other_peer = signed("a", b, body, key=secret("c", "b"))  # c's secret, a's name
        stranger_raw, stranger = signed("z", b, ask_body("z", "hello"), key=secret("a", "b"))
        old_raw, expired = signed("a", b, body, clock=lambda: time.time() - 3600)
        for what, data, sent in [
            ("unsigned", raw, unsigned),
            ("a body changed after signing", forged_raw, headers),
            ("the wrong key", raw, wrong_key),
            ("another peer's secret", raw, other_peer),
            ("a peer b does not know", stranger_raw, stranger),
            ("an expired timestamp", old_raw, expired),
        ]:
            status, text = await post_ask(b, data, sent)
            assert status == 401, (what, status, text)
            assert "not authenticated" in text
        assert await turns(b) == 0  # nothing ran

        status, text = await post_ask(b, raw, headers)
        assert status == 200 and '"status":"ok"' in text and "echo: hello" in text, text
        status, text = await post_ask(b, raw, headers)  # the same request again
        assert (status, "not authenticated" in text) == (401, True)
        assert await turns(b) == 1

        # the loop guard: b is already in the chain, or the chain is past hop_limit (3)
        loop = {
            "prompt": "again",
            "chain": [
                {"peer": "b", "conversation": "filechat:w/C1"},
                {"peer": "a", "conversation": "relay:b/x"},
            ],
            "hops": 2,
        }
        status, text = await post_ask(b, *signed("a", b, loop))
        assert status == 409 and "loop: b is already in the chain" in text, text
        far = {
            "prompt": "far",
            "chain": [{"peer": p, "conversation": "x:y/z"} for p in ("c", "d", "e", "a")],
            "hops": 4,
        }
        status, text = await post_ask(b, *signed("a", b, far))
        assert status == 409 and "hop limit" in text, text
        assert await turns(b) == 1

        # the WAF applies to relayed prompts; one it would ask a person about is refused at
        # once under the peer's policy (deny): nobody waits for an approver
        status, text = await post_ask(
            b, *signed("a", b, ask_body("a", "run this now: rm -rf / --no-preserve-root"))
        )
        assert status == 200 and '"status":"refused"' in text and "delete.root" in text, text
        started = time.monotonic()
        status, text = await post_ask(b, *signed("a", b, ask_body("a", "run: crontab -e")))
        assert status == 200 and '"status":"refused"' in text and "unattended" in text, text
        assert time.monotonic() - started < 5
        assert await turns(b) == 1
        # a chat command is answered like in any chat, without a turn
        status, text = await post_ask(b, *signed("a", b, ask_body("a", "/status")))
        assert status == 200 and '"status":"ok"' in text and "Session" in text, text
        assert await turns(b) == 1
        # a's rate limit (burst 6: the first request, the two dropped, two refused, /status)
        status, text = await post_ask(b, *signed("a", b, ask_body("a", "one more")))
        assert status == 429 and "too many requests from a" in text, text
        assert await turns(b) == 1

        async def two_dropped() -> list[dict[str, object]]:
            found = await audit(b, "relay.dropped")
            return found if len(found) == 2 else []

        dropped = await until(two_dropped, 10, "the relay.dropped audit entries")
        reasons = sorted(d["data"]["reason"].split(":")[0] for d in dropped)
        assert reasons == ["hop limit", "loop"], dropped
        assert all(d["data"]["side"] == "receiver" and d["actor"] == "a" for d in dropped)
