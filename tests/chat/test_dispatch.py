"""The dispatcher: a fake chat platform's messages through the whole of HotPlex (built
like the daemon) to rendered answers."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from hotplex.chat import CHAT_BRIDGE, ChatBridge
from hotplex.services import STORAGE
from hotplex.testing.fakes import FakeChatAdapter, FakeProvider, ToolCall
from hotplex.testing.running import RunningHotPlex
from hotplex.testing.running import running_hotplex as start_hotplex
from hotplex.types import ApprovalRequest

Start = Callable[..., Awaitable[RunningHotPlex]]
FAST = {"min_update_interval": 0.0}


def answered(hp: RunningHotPlex, text: str) -> Callable[[], bool]:
    return lambda: any(text in shown for shown in hp.ops.texts())


async def test_every_enabled_adapter_is_wired_to_the_bridge(running_hotplex: Start) -> None:
    hp = await running_hotplex()
    assert hp.runtime.ctx.services.get(CHAT_BRIDGE) is hp.bridge
    assert hp.runtime.on_message == hp.bridge.handle
    assert "fake" in hp.runtime.replayers


async def test_a_direct_message_is_answered_in_its_conversation(running_hotplex: Start) -> None:
    hp = await running_hotplex()
    message = await hp.adapter.dm("hello there")
    await hp.ops.wait_for(answered(hp, "echo: hello there"))
    assert {c[1] for c in hp.ops.calls if c[0] in ("send", "update")} == {message.address}
    assert hp.provider.processes[0].prompts == ["hello there"]


async def test_a_group_message_without_mention_starts_no_turn(running_hotplex: Start) -> None:
    hp = await running_hotplex()
    await hp.adapter.say("just chatting")
    await hp.adapter.say("a bot talking", mentions_bot=True, from_bot=True)
    await hp.adapter.mention("now you")
    await hp.ops.wait_for(answered(hp, "echo: now you"))
    assert [p.prompts for p in hp.provider.processes] == [["now you"]]


async def test_a_command_is_answered_without_a_turn(running_hotplex: Start) -> None:
    hp = await running_hotplex()
    await hp.adapter.dm("/help")
    await hp.ops.wait_for(lambda: any("/reset" in t for t in hp.ops.texts()))
    assert hp.provider.processes == []


async def test_a_refusal_reaches_the_conversation(running_hotplex: Start) -> None:
    hp = await running_hotplex()
    message = await hp.adapter.dm("please run: rm -rf ~ now")
    await hp.ops.wait_for(lambda: any("delete.home" in t for t in hp.ops.texts()))
    assert hp.ops.calls[0][0:2] == ("send", message.address)
    assert hp.provider.processes == []


async def test_a_redelivered_event_is_dropped(running_hotplex: Start) -> None:
    hp = await running_hotplex()
    message = await hp.adapter.dm("once only")
    await hp.ops.wait_for(answered(hp, "echo: once only"))
    handled = await hp.bridge.handle(hp.adapter, message)
    assert handled.outcome == "duplicate"
    assert hp.provider.processes[0].prompts == ["once only"]


async def test_busy_reject_answers_busy(running_hotplex: Start) -> None:
    provider = FakeProvider(delay=0.2)
    hp = await running_hotplex(config={"engine": {"busy_policy": "reject"}}, provider=provider)
    first = await hp.adapter.dm("slow one")
    second = await hp.bridge.handle(
        hp.adapter, hp.adapter.message("too soon", channel=first.address.split("/")[1], direct=True)
    )
    assert second.outcome == "busy"
    await hp.ops.wait_for(lambda: any("already running" in t for t in hp.ops.texts()))


@pytest.mark.parametrize(("scope", "same"), [("thread", False), ("channel", True), ("user", True)])
async def test_the_session_follows_the_platforms_scope(
    running_hotplex: Start, scope: str, same: bool
) -> None:
    hp = await running_hotplex(config={"plugins": {"fake": {"session_scope": scope}}})
    a = await hp.bridge.handle(
        hp.adapter, hp.adapter.message("one", thread="t1", mentions_bot=True)
    )
    b = await hp.bridge.handle(
        hp.adapter, hp.adapter.message("two", thread="t2", mentions_bot=True)
    )
    assert (a.session_key == b.session_key) is same
    assert a.turn is not None and b.turn is not None
    await a.turn.completed.wait()
    await b.turn.completed.wait()


async def test_decide_applies_a_tool_approval_once(running_hotplex: Start) -> None:
    provider = FakeProvider()
    provider.queue_turn(ToolCall("Bash", {"command": "touch x"}))
    hp = await running_hotplex(provider=provider)
    asked: asyncio.Queue[ApprovalRequest] = asyncio.Queue()

    async def listen(request: ApprovalRequest) -> None:
        asked.put_nowait(request)

    hp.engine.approvals.subscribe(listen)
    handled = await hp.bridge.handle(
        hp.adapter, hp.adapter.message("do it", direct=True), render=False
    )
    request = await asyncio.wait_for(asked.get(), 5)
    outcome = await hp.bridge.decide(request.permission_id, "allow", by="fake:U1")
    assert (outcome.decision, outcome.by, outcome.scope) == ("allow", "fake:U1", "once")
    # a second press changes nothing: the outcome that stands, the presser told
    again = await hp.bridge.decide(request.permission_id, "deny", by="fake:U1")
    assert again == outcome
    told = [c for c in hp.ops.calls if c[0] == "reply_ephemeral"]
    assert [c[2] for c in told] == ["fake:U1"] and "already decided" in told[0][3]
    assert handled.turn is not None
    events = await handled.turn.collect(5)
    assert [e.data.get("is_error") for e in events if e.type == "tool_result"] == [False]


async def test_a_message_a_crash_left_unfinished_is_replayed_once(tmp_path: Path) -> None:
    adapter = FakeChatAdapter()
    message = adapter.message("left behind", direct=True)
    async with start_hotplex(tmp_path, adapter=adapter) as hp:
        storage = hp.runtime.ctx.services.get(STORAGE)
        assert await storage.record_inbound(message)  # received; then the crash
    adapter = FakeChatAdapter()
    async with start_hotplex(tmp_path, adapter=adapter) as hp:
        assert await hp.runtime.replay_inbound() == 1
        await hp.ops.wait_for(answered(hp, "echo: left behind"))
        assert await hp.runtime.replay_inbound() == 0
        await hp.adapter.receive(message)  # the platform delivers it again: a duplicate
        assert [p.prompts for p in hp.provider.processes] == [["left behind"]]
        storage = hp.runtime.ctx.services.get(STORAGE)
        assert await storage.pending_inbound() == []


async def test_without_rendering_the_caller_gets_the_turn_and_the_answers(
    running_hotplex: Start,
) -> None:
    hp = await running_hotplex()
    refused = await hp.bridge.handle(
        hp.adapter, hp.adapter.message("please run: rm -rf ~ now", direct=True), render=False
    )
    assert refused.outcome == "refused" and "delete.home" in (refused.reply or "")
    started = await hp.bridge.handle(
        hp.adapter, hp.adapter.message("streamed by the caller", direct=True), render=False
    )
    assert started.turn is not None
    events = await started.turn.collect(5)
    assert "echo: streamed by the caller" in [e.data.get("text") for e in events]
    assert hp.ops.calls == []  # nothing went through the adapter


async def test_the_work_dir_fact_names_where_a_new_session_works(
    running_hotplex: Start, tmp_path: Path
) -> None:
    hp = await running_hotplex()
    project = tmp_path / "project"
    project.mkdir()
    started = await hp.bridge.handle(
        hp.adapter,
        hp.adapter.message("work there", direct=True),
        render=False,
        facts={"work_dir": project},
    )
    assert started.turn is not None
    await started.turn.collect(5)
    assert hp.provider.processes[0].spec.work_dir == project.resolve()



@pytest.mark.filterwarnings("error::RuntimeWarning")  # "coroutine ... was never awaited"
async def test_a_bridge_closed_before_its_tasks_run_leaves_no_coroutine_unawaited(
    running_hotplex: Start,
) -> None:
    hp = await running_hotplex()
    bridge = ChatBridge(hp.runtime.ctx, hp.runtime)
    bridge.start()  # the start-up rendering of recovered turns, not begun yet
    await bridge.aclose()  # left before that task had a step (as before adapters start)
    del bridge
    gc.collect()  # an unawaited coroutine warns when collected: an error here
