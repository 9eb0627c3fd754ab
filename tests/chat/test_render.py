"""The renderer against the fake chat platform, on the real monotonic clock."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterable

import jinja2
import pytest
from chat_kit import BLOCKS, CLUSTERS, balanced, flat, joins_to, long_answer
from hypothesis import given, settings
from hypothesis import strategies as st

from hotplex.chat import Rendered, Renderer, utf16_length
from hotplex.events import AgentEvent, agent_event
from hotplex.plugins import make_plugin_manager
from hotplex.templating import make_environment
from hotplex.testing.fakes import FakeMessageOperations
from hotplex.types import ChatCapabilities

ADDRESS = "fake:w/c/t"
TEMPLATES = make_environment(make_plugin_manager(entry_points=False, environ={}).templates())
FOOTER = "1,200 in · 340 out tokens · $0.0123 · 2.5 s"
WRITES = ("send", "update", "delete", "start_stream", "append_stream", "stop_stream", "set_status")
USAGE = agent_event(
    "usage",
    input_tokens=1200,
    output_tokens=340,
    cache_read_tokens=0,
    cache_write_tokens=0,
    cost_usd=0.0123,
    context_used=1000,
    context_window=200_000,
)


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def platform(mode: str = "edit", **overrides: object) -> FakeMessageOperations:
    fields: dict[str, object] = {
        "max_message_length": 4000,
        "streaming": mode,
        "min_update_interval": 0.01,
        "escape": slack_escape,
        "length": utf16_length,
    }
    return FakeMessageOperations(ChatCapabilities(**{**fields, **overrides}))  # type: ignore[arg-type]


async def turn(
    text: str,
    *,
    deltas: int,
    before: Iterable[AgentEvent] = (),
    final: str | None = None,
    at_end: Callable[[], None] = lambda: None,
) -> AsyncIterator[AgentEvent]:
    """A turn streaming ``text`` in ``deltas`` pieces as fast as the loop runs, then its
    ``text`` event (``final``, default ``text``), usage and done."""
    for event in before:
        yield event
    step = max(1, -(-len(text) // deltas))
    for start in range(0, len(text), step):
        yield agent_event("text_delta", text=text[start : start + step])
        await asyncio.sleep(0)  # hand the loop to the renderer: a yield, not a wait
    yield agent_event("text", text=text if final is None else final)
    yield USAGE
    at_end()
    yield agent_event("done", status="ok", duration_ms=2500)


async def render(ops: FakeMessageOperations, events: AsyncIterator[AgentEvent]) -> Rendered:
    return await asyncio.wait_for(Renderer(ops, ADDRESS, templates=TEMPLATES).render(events), 30)


def answer(ops: FakeMessageOperations, footer: str = FOOTER) -> list[str]:
    """The messages without the footer at the end of the last one."""
    texts = ops.texts(ADDRESS)
    assert texts and texts[-1].endswith(footer), texts[-1:]
    last = texts[-1][: -len(footer)].removesuffix("\n\n")
    return [*texts[:-1], last] if last else texts[:-1]


def assert_paced(ops: FakeMessageOperations, interval: float) -> None:
    times = ops.times(*WRITES)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= interval for gap in gaps), f"{min(gaps):.4f} s < {interval} s"


# -- rate -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["edit", "native"])
async def test_a_fast_stream_never_exceeds_the_update_rate(mode: str) -> None:
    ops = platform(mode, min_update_interval=0.02)
    text = "".join(f"w{i % 10} " for i in range(20_000))
    result = await render(ops, turn(text, deltas=20_000))
    assert len(ops.times(*WRITES)) >= 4, "the stream should have taken several writes"
    assert_paced(ops, 0.02)
    assert result.failures == 0
    assert joins_to(answer(ops), text)


# -- long answers, characters, escaping --------------------------------------------------


@pytest.mark.parametrize("mode", ["edit", "native", "send"])
async def test_a_sixty_thousand_character_answer_arrives_complete(mode: str) -> None:
    ops = platform(mode, escape=lambda text: text)
    text = long_answer(60_000)
    await render(ops, turn(text, deltas=3000))
    messages = ops.texts(ADDRESS)
    assert len(messages) >= 15
    assert all(utf16_length(m) <= 4000 for m in messages)
    assert all(balanced(m) for m in messages[:-1])
    assert joins_to(answer(ops), text)
    assert_paced(ops, 0.01)


@pytest.mark.parametrize("mode", ["edit", "native"])
async def test_multibyte_characters_are_never_split_between_messages(mode: str) -> None:
    ops = platform(mode, max_message_length=100, min_update_interval=0.002, escape=lambda t: t)
    tokens = [CLUSTERS[i * 7 % len(CLUSTERS)] + ("" if i % 3 else " ") for i in range(3000)]
    text = "".join(tokens)
    await render(ops, turn(text, deltas=500))
    messages = answer(ops)
    assert "".join(messages) == text and len(messages) > 20
    boundaries = set(itertools.accumulate(map(len, tokens)))
    cuts = list(itertools.accumulate(map(len, messages)))
    assert all(cut in boundaries for cut in cuts)


@pytest.mark.parametrize("mode", ["edit", "native", "send"])
async def test_escape_applies_to_all_agent_text(mode: str) -> None:
    ops = platform(mode)
    text = "Done. <!channel> see <@U123> & <https://x|y>\n" * 200
    before = [
        agent_event("tool_use", tool_use_id="t1", name="Bash", input={"command": "echo <!here>"}),
        agent_event("status", text="<!channel> status"),
    ]
    await render(ops, turn(text, deltas=300, before=before))
    sent = [str(arg) for call in ops.log for arg in call.args]
    assert not [s for s in sent if "<!channel>" in s or "<!here>" in s or "<@U123>" in s]
    assert joins_to(answer(ops), slack_escape(text))


# -- native streams -----------------------------------------------------------------------


async def test_a_native_stream_receives_only_the_new_parts() -> None:
    ops = platform("native", max_message_length=200_000, min_update_interval=0.002)
    text = "".join(f"token{i} " for i in range(10_000))
    await render(ops, turn(text, deltas=10_000))
    streamed = [c for c in ops.calls if c[0] in ("start_stream", "append_stream", "stop_stream")]
    assert [c[0] for c in streamed[:2]] == ["start_stream", "append_stream"]
    assert streamed[-1][0] == "stop_stream" and len(streamed) >= 4
    assert "".join(c[2] for c in streamed) == f"{text}\n\n{FOOTER}"
    assert not [c for c in ops.calls if c[0] == "update"]


async def aging(ops: FakeMessageOperations, events: AsyncIterator[AgentEvent]) -> Rendered:
    """Render on a clock that moves 0.005 s each time it is read, so streams grow old
    however fast the machine is."""
    ticks = itertools.count(0.0, 0.005)
    renderer = Renderer(ops, ADDRESS, templates=TEMPLATES, clock=lambda: next(ticks))
    return await asyncio.wait_for(renderer.render(events), 30)


async def test_a_stream_older_than_its_lifetime_goes_on_in_a_new_stream() -> None:
    ops = platform("native", max_message_length=200_000, stream_lifetime=0.05)
    text = "".join(f"t{i} " for i in range(20_000))
    await aging(ops, turn(text, deltas=20_000))
    methods = [c[0] for c in ops.calls if c[0] != "set_status"]
    assert methods[:2] == ["start_stream", "append_stream"]
    assert methods.count("start_stream") >= 2 and "update" not in methods
    assert methods.count("start_stream") == methods.count("stop_stream")
    shown = ops.texts(ADDRESS)
    assert len(shown) == methods.count("start_stream")
    assert "".join(shown) == f"{text}\n\n{FOOTER}"  # ended where they were: nothing lost


async def test_a_stream_rotated_inside_a_code_block_closes_and_reopens_it() -> None:
    ops = platform("native", max_message_length=200_000, stream_lifetime=0.05)
    code = "".join(f"    line_{i} = {i}\n" for i in range(4000))
    text = f"Intro.\n\n```python\n{code}```\n\nOutro."
    await aging(ops, turn(text, deltas=4000))
    shown = ops.texts(ADDRESS)
    assert len(shown) >= 2 and "update" not in [c[0] for c in ops.calls]
    last = shown[-1]
    parts = [*shown[:-1], last[: last.index("Outro.") + len("Outro.")]]
    assert all(balanced(p) for p in parts)
    assert joins_to(parts, text)


async def test_a_final_text_that_differs_from_the_deltas_wins() -> None:
    for mode in ("edit", "native"):
        ops = platform(mode)
        await render(ops, turn("helo wrld " * 50, deltas=50, final="hello world"))
        assert ops.texts(ADDRESS) == [f"hello world\n\n{FOOTER}"], mode


# -- failures -------------------------------------------------------------------------------


async def test_a_failing_write_is_retried_and_the_final_text_arrives() -> None:
    ops = platform("edit")
    text = "".join(f"part {i}. " for i in range(2000))

    async def events() -> AsyncIterator[AgentEvent]:
        ops.fail_next(3)
        async for event in turn(text, deltas=400):
            if event.type == "done":  # fail the first two writes of the final text too
                await ops.wait_for(lambda: any(c.error is None for c in ops.log))
                ops.fail_next(2)
            yield event

    renderer = Renderer(ops, ADDRESS, templates=TEMPLATES, backoff=0.02)
    result = await asyncio.wait_for(renderer.render(events()), 30)
    assert result.failures == 5
    errors = [c.error for c in ops.log]
    assert errors[:3] == ["ConnectionError"] * 3 and errors.count("ConnectionError") == 5
    assert joins_to(answer(ops), text)


async def test_a_dead_native_stream_falls_back_to_update() -> None:
    ops = platform("native")
    text = "".join(f"part {i}. " for i in range(300))
    ops.fail_next(50, methods=("append_stream", "stop_stream"))
    renderer = Renderer(ops, ADDRESS, templates=TEMPLATES, backoff=0.02)
    result = await asyncio.wait_for(renderer.render(turn(text, deltas=100)), 30)
    assert result.failures >= 2
    assert ops.texts(ADDRESS) == [f"{text}\n\n{FOOTER}"]
    assert ops.calls[-1][0] == "update"


async def test_the_final_text_is_given_up_only_after_every_attempt() -> None:
    ops = platform("edit")
    renderer = Renderer(ops, ADDRESS, attempts=3, backoff=0.001)
    with pytest.raises(ConnectionError):
        await renderer.render(turn("hello", deltas=1, at_end=lambda: ops.fail_next(100)))
    assert renderer.result.failures >= 3


async def test_a_rate_limited_write_waits_retry_after() -> None:
    ops = platform("edit")
    ops.rate_limit_next(1, retry_after=0.3)
    text = "".join(f"part {i}. " for i in range(2000))
    await render(ops, turn(text, deltas=400))
    refused = [c for c in ops.log if c.error == "RateLimitedError"]
    assert len(refused) == 1
    later = [c.at for c in ops.log if c.at > refused[0].at]
    assert later and later[0] - refused[0].at >= 0.3
    assert joins_to(answer(ops), text)


async def test_the_final_text_arrives_when_the_events_fail() -> None:
    ops = platform("edit")

    async def broken() -> AsyncIterator[AgentEvent]:
        yield agent_event("text_delta", text="partial answer")
        raise RuntimeError("engine lost")

    with pytest.raises(RuntimeError, match="engine lost"):
        await Renderer(ops, ADDRESS).render(broken())
    assert ops.texts(ADDRESS) == ["partial answer"]


# -- status and footer ----------------------------------------------------------------------


async def test_edit_mode_shows_the_status_in_the_message_until_the_end() -> None:
    ops = platform("edit")

    async def events() -> AsyncIterator[AgentEvent]:
        yield agent_event("thinking", text="let me see")
        yield agent_event("tool_use", tool_use_id="t1", name="Bash", input={"command": "ls -la"})
        await ops.wait_for(lambda: any("Bash: ls -la" in t for t in ops.texts()))
        async for event in turn("the answer", deltas=2):
            yield event

    await render(ops, events())
    shown = [c[2] for c in ops.calls if c[0] in ("send", "update")]
    assert "⏳ Bash: ls -la" in shown
    assert ops.texts(ADDRESS) == [f"the answer\n\n{FOOTER}"]


async def test_native_mode_shows_the_status_with_set_status() -> None:
    ops = platform("native")

    async def events() -> AsyncIterator[AgentEvent]:
        yield agent_event("tool_use", tool_use_id="t1", name="Read", input={"file_path": "/a"})
        await ops.wait_for(lambda: ("set_status", ADDRESS, "Read: /a") in ops.calls)
        yield agent_event(
            "permission_request", permission_id="p1", tool="Bash", input={}, scopes=["once"]
        )
        await ops.wait_for(
            lambda: ops.calls[-1] == ("set_status", ADDRESS, "waiting for approval: Bash")
        )
        async for event in turn("ok", deltas=1):
            yield event

    await render(ops, events())
    statuses = [c[2] for c in ops.calls if c[0] == "set_status"]
    assert statuses[0] == "Read: /a" and statuses[-1] is None


async def test_the_footer_comes_from_the_template() -> None:
    ops = platform("edit")
    templates = jinja2.Environment(
        loader=jinja2.DictLoader({"mine.j2": "{{ usage.output_tokens }} tokens, {{ status }}"})
    )
    renderer = Renderer(ops, ADDRESS, templates=templates, footer_template="mine.j2")
    result = await renderer.render(turn("hi", deltas=1))
    assert ops.texts(ADDRESS) == ["hi\n\n340 tokens, ok"] and result.footer == "340 tokens, ok"
    plain = platform("edit")
    await Renderer(plain, ADDRESS).render(turn("hi", deltas=1))
    assert plain.texts(ADDRESS) == ["hi"]


async def test_a_broken_footer_template_does_not_cost_the_answer() -> None:
    ops = platform("edit")
    broken = jinja2.Environment(
        loader=jinja2.DictLoader({"t.j2": "{{ nothing.here }}"}), undefined=jinja2.StrictUndefined
    )
    await Renderer(ops, ADDRESS, templates=broken, footer_template="t.j2").render(
        turn("the answer", deltas=3)
    )
    assert ops.texts(ADDRESS) == ["the answer"]


# -- properties -------------------------------------------------------------------------------


@settings(max_examples=60)
@given(
    BLOCKS,
    st.lists(st.integers(1, 40), min_size=1, max_size=20),
    st.integers(64, 300),
    st.sampled_from(["edit", "native", "send"]),
)
def test_any_streamed_answer_arrives_whole_within_the_limit(
    blocks: list[list[str]], sizes: list[int], limit: int, mode: str
) -> None:
    tokens = flat(blocks)
    text = "".join(tokens)
    ops = platform(mode, max_message_length=limit, min_update_interval=0.0, escape=lambda t: t)
    pieces, position = [], 0
    for size in itertools.cycle(sizes):
        if position >= len(text):
            break
        pieces.append(text[position : position + size])
        position += size

    async def events() -> AsyncIterator[AgentEvent]:
        for piece in pieces:
            yield agent_event("text_delta", text=piece)
            await asyncio.sleep(0)  # hand the loop to the renderer: a yield, not a wait
        yield agent_event("text", text=text)
        yield agent_event("done", status="ok", duration_ms=1)

    asyncio.run(asyncio.wait_for(Renderer(ops, ADDRESS).render(events()), 30))
    messages = ops.texts(ADDRESS)
    assert all(utf16_length(m) <= limit for m in messages)
    assert all(balanced(m) for m in messages[:-1])
    assert joins_to(messages, text) if text else messages == []
    if all(not m.startswith("```") for m in messages):  # no fence reopened: cuts are plain
        cuts = set(itertools.accumulate(map(len, messages)))
        assert cuts <= set(itertools.accumulate(map(len, tokens))) | {0}


async def test_a_reply_stopped_by_the_user_is_written_no_more_and_stops_the_turn() -> None:
    """A write answering StoppedByUserError (Slack's stop button on a stream): nothing more
    is written for the turn, not even its final text, and ``on_stop`` runs once; the status
    shown is cleared."""
    from hotplex.errors import StoppedByUserError

    ops = platform("native")
    stops: list[int] = []
    release = asyncio.Event()

    async def events() -> AsyncIterator[AgentEvent]:
        yield agent_event("text_delta", text="first part")
        await ops.wait_for(lambda: bool(ops.calls))
        yield agent_event("thinking", text="hmm")
        await ops.wait_for(lambda: "set_status" in {c[0] for c in ops.calls})
        ops.fail_next(1, StoppedByUserError("stopped"), methods=("append_stream",))
        yield agent_event("text_delta", text=" and more")
        await asyncio.wait_for(release.wait(), 10)  # the interrupt ends the turn
        yield agent_event("text", text="first part and more, and the end")
        yield agent_event("done", status="interrupted", duration_ms=10)

    async def on_stop() -> None:
        stops.append(1)
        release.set()

    renderer = Renderer(ops, ADDRESS, templates=TEMPLATES, on_stop=on_stop)
    result = await asyncio.wait_for(renderer.render(events()), 30)
    assert result.stopped and stops == [1]
    assert [c[0] for c in ops.calls if c[0] != "set_status"] == ["start_stream"]
    assert [c.method for c in ops.log if c.method != "set_status"][-1] == "append_stream"
    statuses = [c[2] for c in ops.calls if c[0] == "set_status"]
    assert statuses[0] and statuses[-1] is None
