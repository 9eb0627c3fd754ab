"""Issue 13's "done when" for the dispatcher, through the whole path: the fake chat
platform -> dispatcher -> middleware -> engine -> fake agent -> renderer -> the platform."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

import pytest
from chat_kit import balanced, joins_to, long_answer

from hotplex.chat import utf16_length
from hotplex.events import AgentEvent, agent_event
from hotplex.testing.fakes import FakeMessageOperations, FakeProvider
from hotplex.testing.running import RunningHotPlex
from hotplex.types import ChatCapabilities

Start = Callable[..., Awaitable[RunningHotPlex]]
WRITES = ("send", "update", "delete", "start_stream", "append_stream", "stop_stream", "set_status")
END = "THE END."


def streamed(text: str, deltas: int) -> list[AgentEvent]:
    step = max(1, -(-len(text) // deltas))
    parts = [agent_event("text_delta", text=text[i : i + step]) for i in range(0, len(text), step)]
    return [*parts, agent_event("text", text=text)]


def messages_of(ops: FakeMessageOperations, address: str) -> list[str]:
    """What the conversation shows, the last message cut after the answer's end mark
    (the usage footer follows it)."""
    texts = ops.texts(address)
    assert texts and END in texts[-1], texts[-1:]
    last = texts[-1]
    return [*texts[:-1], last[: last.index(END) + len(END)]]


def gaps(ops: FakeMessageOperations, address: str | None = None) -> list[float]:
    """Seconds between consecutive writes (to ``address`` only, when given)."""
    times = [c.at for c in ops.log if c.method in WRITES and address in (None, c.args[0])]
    return [b - a for a, b in itertools.pairwise(times)]


async def test_a_direct_message_and_a_group_mention_each_get_a_streamed_reply(
    running_hotplex: Start,
) -> None:
    words = " ".join(f"word{i}" for i in range(12))
    caps = ChatCapabilities(min_update_interval=0.01)
    hp = await running_hotplex(capabilities=caps, provider=FakeProvider(delay=0.03))
    ignored = await hp.adapter.say(f"chatter {words}", channel="C2")
    dm = await hp.adapter.dm(f"dm {words}")
    mention = await hp.adapter.mention(f"mention {words}")
    for message, prompt in ((dm, f"dm {words}"), (mention, f"mention {words}")):
        final = f"echo: {prompt}"
        await hp.ops.wait_for(
            lambda m=message, f=final: any(f in t for t in hp.ops.texts(m.address))
        )
        shown = [
            c[2] for c in hp.ops.calls if c[0] in ("send", "update") and c[1] == message.address
        ]
        assert len(shown) >= 2, f"no streaming for {message.address}: {shown}"
        assert shown[0] != shown[-1] and final.startswith(shown[0].rstrip("…").strip())
    assert not hp.ops.texts(ignored.address)
    assert sorted(p for process in hp.provider.processes for p in process.prompts) == [
        f"dm {words}",
        f"mention {words}",
    ]


async def test_a_fast_stream_never_exceeds_the_declared_update_rate(
    running_hotplex: Start,
) -> None:
    interval = 0.05
    caps = ChatCapabilities(min_update_interval=interval, streaming="edit")
    provider = FakeProvider()
    text = "".join(f"w{i % 10} " for i in range(5000)) + END
    provider.queue_turn(*streamed(text, 5000))
    provider.queue_turn(*streamed(text, 5000))
    hp = await running_hotplex(capabilities=caps, provider=provider)
    a = await hp.adapter.dm("first", user="fake:U1")
    b = await hp.adapter.dm("second", user="fake:U2")  # another conversation, its own pace
    for message in (a, b):
        await hp.ops.wait_for(lambda m=message: any(END in t for t in hp.ops.texts(m.address)), 30)
    assert len(ops_writes := hp.ops.times(*WRITES)) >= 6, ops_writes
    for message in (a, b):
        shortest = min(gaps(hp.ops, message.address))
        assert shortest >= interval, f"{shortest:.4f} s < {interval} s"
    for message in (a, b):
        assert joins_to(messages_of(hp.ops, message.address), text)


async def test_a_sixty_thousand_character_answer_arrives_complete(running_hotplex: Start) -> None:
    caps = ChatCapabilities(max_message_length=4000, min_update_interval=0.005, length=utf16_length)
    provider = FakeProvider()
    text = long_answer(60_000) + "\n\n" + END
    assert text.count("```") >= 10
    provider.queue_turn(*streamed(text, 3000))
    hp = await running_hotplex(capabilities=caps, provider=provider)
    message = await hp.adapter.mention("write a lot")
    await hp.ops.wait_for(lambda: any(END in t for t in hp.ops.texts(message.address)), 60)
    shown = hp.ops.texts(message.address)
    assert len(shown) >= 15
    assert all(utf16_length(m) <= 4000 for m in shown)
    assert all(balanced(m) for m in shown[:-1])  # the answer itself may end in a fence
    assert joins_to(messages_of(hp.ops, message.address), text)
    assert not [c for c in hp.ops.log if c.error], "the platform refused a write"


@pytest.mark.parametrize("scope", ["thread", "channel"])
async def test_the_dispatcher_does_not_block_the_adapter_on_a_prompt_approval(
    running_hotplex: Start, scope: str
) -> None:
    hp = await running_hotplex(config={"plugins": {"fake": {"session_scope": scope}}})
    prompt = "append a line: echo hi >> ~/.bashrc"
    asked = await asyncio.wait_for(
        hp.bridge.handle(hp.adapter, hp.adapter.message(prompt, thread="t1", direct=True)), 5
    )
    assert asked.outcome == "pending"
    pending = hp.engine.approvals.pending()
    assert [r.session_id for r in pending] == [hp.engine.session_id(asked.session_key)]
    other = await hp.adapter.dm("meanwhile", user="fake:U2")
    await hp.ops.wait_for(lambda: any("echo: meanwhile" in t for t in hp.ops.texts(other.address)))
    pending = hp.engine.approvals.pending()
    assert [r.kind for r in pending] == ["prompt"]
    await hp.bridge.decide(pending[0].permission_id, "allow", by="fake:U1")  # who sent it
    await hp.ops.wait_for(lambda: any("echo: append a line" in t for t in hp.ops.texts()))
