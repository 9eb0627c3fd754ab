"""Renderers of several conversations sharing one adapter's write budget, on virtual time:
each keeps its own interval, and a new question's first text does not wait behind the
streaming updates of other conversations."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from virtual_time import VirtualTime

from hotplex.chat import Budget, Pacer, Renderer
from hotplex.events import AgentEvent, agent_event
from hotplex.testing.fakes import FakeMessageOperations
from hotplex.testing.running import RunningHotPlex
from hotplex.types import ChatCapabilities

WRITES = ("send", "update", "start_stream", "append_stream", "stop_stream")


async def streaming(clock: VirtualTime, words: int, *, start: float) -> AsyncIterator[AgentEvent]:
    """A turn that begins at ``start`` and writes one word every 0.1 s."""
    await clock.sleep(start)
    for i in range(words):
        yield agent_event("text_delta", text=f"w{i} ")
        await clock.sleep(0.1)
    yield agent_event("text", text="".join(f"w{i} " for i in range(words)))
    yield agent_event("done", status="ok", duration_ms=1)


@pytest.mark.parametrize("mode", ["edit", "native"])
async def test_a_new_question_gets_its_first_text_ahead_of_other_threads_updates(
    mode: str,
) -> None:
    clock = VirtualTime()
    caps = ChatCapabilities(
        streaming=mode,  # type: ignore[arg-type]
        min_update_interval=1.0,
        max_writes_per_minute=30.0,  # one write every 2 s for every conversation together
        write_burst=1,
    )
    ops = FakeMessageOperations(caps, clock=clock)
    budget = Budget(30.0, burst=1, clock=clock, sleep=clock.sleep)

    def renderer(address: str) -> Renderer:
        pacer = Pacer(1.0, budget=budget, clock=clock, sleep=clock.sleep)
        return Renderer(ops, address, pacer=pacer, clock=clock, sleep=clock.sleep)

    busy = [renderer(f"fake:w/c/t{i}") for i in range(6)]
    late = renderer("fake:w/c/new")
    await clock.run(
        *(r.render(streaming(clock, 500, start=0.0)) for r in busy),
        late.render(streaming(clock, 3, start=30.0)),
    )
    first = min(c.at for c in ops.log if c.args[0] == "fake:w/c/new")
    assert 30.0 <= first <= 32.0 + 1e-9, first  # at most one budget slot away
    for address in {c.args[0] for c in ops.log}:
        times = [c.at for c in ops.log if c.method in WRITES and c.args[0] == address]
        assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(times)), address
    every = sorted(c.at for c in ops.log if c.method in WRITES)
    assert all(b - a >= 2.0 - 1e-9 for a, b in itertools.pairwise(every))
    assert any("w2" in t for t in ops.texts("fake:w/c/new"))


async def test_the_bridge_gives_each_turn_its_own_pacer_and_the_adapter_one_budget(
    running_hotplex: Callable[..., Awaitable[RunningHotPlex]],
) -> None:
    caps = ChatCapabilities(min_update_interval=0.7, max_writes_per_minute=42.0, write_burst=4)
    hp = await running_hotplex(capabilities=caps)
    one, two = hp.bridge.pacer(hp.adapter), hp.bridge.pacer(hp.adapter)
    assert one is not two and one.budget is two.budget
    assert one.min_interval == 0.7
    assert (one.budget.per_minute, one.budget.burst) == (42.0, 4)


def test_capabilities_refuse_a_nonsense_budget() -> None:
    for fields in ({"max_writes_per_minute": 0.0}, {"max_writes_per_minute": -5.0},
                   {"write_burst": 0}):  # fmt: skip
        with pytest.raises(ValueError, match=r"max_writes_per_minute|write_burst"):
            ChatCapabilities(**fields)  # type: ignore[arg-type]
