"""What a restart leaves of a relayed turn has nobody waiting for it: a relayed message
stored but never run is not run again, and an approval for a relay conversation (its turn
recovered without the peer's policy) is denied at once instead of waiting its timeout."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import hotplex_relay.plugin as relay_plugin

from hotplex.services import STORAGE
from hotplex.testing.running import RunningHotPlex
from hotplex.types import IncomingMessage

CONFIG = {
    "security": {"approval_timeout": "60s"},
    "plugins": {"relay": {"name": "b"}},
}


async def test_a_relayed_message_left_by_a_crash_is_not_run_again(
    running_hotplex: Callable[..., Awaitable[RunningHotPlex]],
) -> None:
    hp = await running_hotplex(plugins=[("relay", relay_plugin)], config=CONFIG)
    storage = hp.runtime.ctx.services.get(STORAGE)
    message = IncomingMessage(
        address="relay:a/abc", text="hello", user="relay:a", platform="relay",
        event_id="relay-1", message_key="relay:a:1", direct=True,
    )  # fmt: skip
    assert await storage.record_inbound(message)
    assert [m.message_key for m in await storage.pending_inbound()] == ["relay:a:1"]
    assert await hp.runtime.replay_inbound() == 1
    assert await storage.pending_inbound() == []
    assert hp.engine.sessions() == []  # no session, no turn


async def test_an_approval_for_a_relay_conversation_is_denied_at_once(
    running_hotplex: Callable[..., Awaitable[RunningHotPlex]],
) -> None:
    hp = await running_hotplex(plugins=[("relay", relay_plugin)], config=CONFIG)
    turn = await hp.engine.execute("relay:a/abc", "hi", address="relay:a/abc", user="relay:a")
    await turn.collect(5)
    session_id = hp.engine.session_id("relay:a/abc")
    started = time.monotonic()
    request = await hp.engine.approvals.open(
        kind="tool", session_id=session_id, address="relay:a/abc", tool="Bash", input={}
    )
    decision = await hp.engine.approvals.wait(request)
    assert decision.decision == "deny" and "nobody can approve" in (decision.reason or "")
    assert time.monotonic() - started < 10  # not the 60 s approval timeout
