"""The fake chat platform of hotplex.testing, and the MessageOperations defaults."""

from __future__ import annotations

import pytest

from hotplex.errors import RateLimitedError
from hotplex.interfaces import MessageOperations
from hotplex.testing.fakes import FakeChatAdapter, FakeMessageOperations
from hotplex.types import ApprovalRequest, ChatCapabilities, MessageRef


async def test_every_call_is_recorded_with_a_monotonic_time() -> None:
    ticks = iter([1.0, 2.0, 3.0, 4.0, 5.0])
    ops = FakeMessageOperations(clock=lambda: next(ticks))
    ref = await ops.send("a", "one")
    await ops.update(ref, "two")
    await ops.set_status("a", "working")
    await ops.delete(ref)
    assert [(c.method, c.at) for c in ops.log] == [
        ("send", 1.0), ("update", 2.0), ("set_status", 3.0), ("delete", 4.0),
    ]  # fmt: skip
    assert ops.calls[0] == ("send", "a", "one", ref.message_id)
    assert ops.texts() == []


async def test_calls_can_be_made_to_fail_or_be_rate_limited() -> None:
    ops = FakeMessageOperations()
    ops.fail_next(1)
    ops.rate_limit_next(2, retry_after=1.5)
    with pytest.raises(ConnectionError):
        await ops.send("a", "x")
    for _ in range(2):
        with pytest.raises(RateLimitedError) as caught:
            await ops.send("a", "x")
        assert caught.value.retry_after == 1.5
    await ops.send("a", "x")
    assert [c.error for c in ops.log] == [
        "ConnectionError", "RateLimitedError", "RateLimitedError", None,
    ]  # fmt: skip
    assert len(ops.calls) == 1
    assert ops.times("send") == sorted(ops.times("send"))


async def test_failures_can_target_some_methods() -> None:
    ops = FakeMessageOperations()
    ops.fail_next(1, methods=("append_stream",))
    ref = await ops.start_stream("a", "he")
    with pytest.raises(ConnectionError):
        await ops.append_stream(ref, "ll")
    await ops.append_stream(ref, "llo")
    await ops.stop_stream(ref, "!")
    assert ops.texts("a") == ["hello!"]


def test_the_adapter_declares_the_capabilities_it_was_given() -> None:
    caps = ChatCapabilities(max_message_length=100, streaming="native", buttons=True)
    assert FakeChatAdapter(caps).operations.capabilities is caps
    assert FakeChatAdapter().operations.capabilities == ChatCapabilities()


class Minimal(MessageOperations):
    async def send(self, address: str, text: str) -> MessageRef:
        return MessageRef(address, "1")

    async def update(self, ref: MessageRef, text: str) -> None:
        pass

    async def delete(self, ref: MessageRef) -> None:
        pass

    async def ask_approval(self, request: ApprovalRequest) -> MessageRef:
        return MessageRef(request.address or "", "2")


async def test_an_adapter_written_before_capabilities_keeps_working() -> None:
    ops = Minimal()
    assert ops.capabilities.streaming == "edit"
    assert ops.capabilities.escape("<!channel>") == "<!channel>"
    with pytest.raises(NotImplementedError):
        await ops.append_stream(MessageRef("a", "1"), "x")


def test_capabilities_refuse_impossible_limits() -> None:
    with pytest.raises(ValueError):
        ChatCapabilities(max_message_length=10)
    with pytest.raises(ValueError):
        ChatCapabilities(min_update_interval=-1)
    with pytest.raises(ValueError):
        ChatCapabilities(streaming="telepathy")  # type: ignore[arg-type]
