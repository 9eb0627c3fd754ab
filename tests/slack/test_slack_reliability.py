"""Redelivery (also across a restart), signatures, rate limits, long answers and long
streams, against the fake Slack."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from slack_kit import CHANNEL, DM, MODES, USER, Mode, SlackRig, slack_hotplex, workspace

from hotplex.chat import utf16_length
from hotplex.events import AgentEvent, agent_event
from hotplex.testing.fakes import FakeProvider
from hotplex.testing.slack import FakeSlack

sys.path.insert(0, str(Path(__file__).parents[1] / "chat"))
from chat_kit import balanced, joins_to, long_answer

END = "THE-END-MARK"


def streamed(text: str, deltas: int) -> list[AgentEvent]:
    step = max(1, -(-len(text) // deltas))
    parts = [agent_event("text_delta", text=text[i : i + step]) for i in range(0, len(text), step)]
    return [*parts, agent_event("text", text=text)]


def shown(rig: SlackRig, channel: str, thread: str) -> list[str]:
    """The answer's messages in the thread, the last cut after the end mark (the usage
    footer follows it)."""
    texts = [m.text for m in rig.replies(channel, thread)]
    assert texts and END in texts[-1], texts[-1:]
    return [*texts[:-1], texts[-1][: texts[-1].index(END) + len(END)]]


@pytest.mark.parametrize("mode", MODES)
async def test_a_redelivered_event_is_answered_once_also_after_a_restart(
    tmp_path: Path, mode: Mode
) -> None:
    async with FakeSlack() as slack:
        workspace(slack)
        async with slack_hotplex(tmp_path, slack, mode=mode) as rig:
            ts = await slack.user_message(DM, USER, "only once")
            await rig.answer(DM, ts, "echo: only once")
            (first,) = slack.deliveries
            again = await slack.send_event(first.payload["event"], event_id=first.event_id)
            await slack.wait_for(lambda: again.acked)
            # a later message is answered, so the redelivery had its chance to start a turn
            later = await slack.user_message(DM, USER, "later")
            await rig.answer(DM, later, "echo: later")
        async with slack_hotplex(tmp_path, slack, mode=mode) as rig:
            again = await slack.send_event(first.payload["event"], event_id=first.event_id)
            await slack.wait_for(lambda: again.acked)
            after = await slack.user_message(DM, USER, "after the restart")
            await rig.answer(DM, after, "echo: after the restart")
            assert [m.text for m in rig.replies(DM, ts) if "only once" in m.text] == [
                m.text for m in rig.replies(DM, ts)
            ]
            assert len(rig.replies(DM, ts)) == 1
            assert [p.prompts for p in rig.provider.processes] == [["after the restart"]]


async def test_a_bad_or_stale_signature_gets_401_and_no_reply(tmp_path: Path) -> None:
    async with FakeSlack() as slack, slack_hotplex(tmp_path, workspace(slack), mode="http") as rig:
        event = {
            "type": "message",
            "channel": DM,
            "channel_type": "im",
            "user": USER,
            "text": "forged",
            "ts": "1700000000.000100",
        }
        body = slack.event_envelope(event, event_id="EvForged")
        status, _ = await slack.post_signed(body, signing_secret="not-the-secret")
        assert status == 401
        status, _ = await slack.post_signed(body, timestamp=time.time() - 6 * 60)
        assert status == 401
        status, _ = await slack.post_signed(body, headers={"X-Slack-Signature": "v0=00"})
        assert status == 401
        status, answer = await slack.url_verification("abc")  # a good one goes through
        assert status == 200 and "abc" in str(answer)
        ts = await slack.user_message(DM, USER, "real")
        await rig.answer(DM, ts, "echo: real")
        assert [p.prompts for p in rig.provider.processes] == [["real"]]
        assert not rig.replies(DM, "1700000000.000100")


@pytest.mark.parametrize("mode", MODES)
async def test_a_forced_429_delays_the_write_and_then_it_succeeds(
    tmp_path: Path, mode: Mode
) -> None:
    async with FakeSlack() as slack, slack_hotplex(tmp_path, workspace(slack), mode=mode) as rig:
        slack.fail_next("chat.startStream", "ratelimited", retry_after=1, times=2)
        ts = await slack.user_message(DM, USER, "rate me")
        await rig.answer(DM, ts, "echo: rate me")
        calls = slack.calls_to("chat.startStream")
        assert [c.outcome for c in calls] == ["ratelimited", "ratelimited", "ok"]
        assert calls[1].at - calls[0].at >= 0.9  # Retry-After honoured (slack-sdk)
        assert calls[2].at - calls[1].at >= 0.9  # then by core's renderer
        assert len(rig.replies(DM, ts)) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_a_60000_character_answer_arrives_complete_within_limits(
    tmp_path: Path, mode: Mode
) -> None:
    text = long_answer(60_000) + "\n\n" + END
    provider = FakeProvider([streamed(text, 3000)])
    async with (
        FakeSlack() as slack,
        slack_hotplex(tmp_path, workspace(slack), mode=mode, provider=provider) as rig,
    ):
        ts = await slack.user_message(CHANNEL, USER, "write a lot", mention=True)
        await rig.answer(CHANNEL, ts, END, timeout=60)
        parts = shown(rig, CHANNEL, ts)
        assert len(parts) >= 6
        assert all(utf16_length(p) <= 12_000 for p in parts)
        assert all(balanced(p) for p in parts[:-1])
        assert joins_to(parts, text)
        refused = [c for c in slack.calls if not c.ok]
        assert not refused, refused[:3]


async def test_a_long_stream_rotates_before_its_lifetime_and_loses_no_text(
    tmp_path: Path,
) -> None:
    """A turn longer than a stream lives (Slack's lifetime scaled down to 1.5 s, the
    adapter's to 1 s, as 300 s and 270 s are): each stream is stopped in time and the
    answer goes on in a new streamed message of the thread; nothing is lost."""
    words = [f"w{i} " for i in range(120)]
    text = "".join(words) + END
    steps = [agent_event("text_delta", text=w) for w in words]
    provider = FakeProvider(
        [[*steps, agent_event("text_delta", text=END), agent_event("text", text=text)]], delay=0.03
    )
    async with (
        FakeSlack(stream_lifetime=1.5) as slack,
        slack_hotplex(
            tmp_path,
            workspace(slack),
            provider=provider,
            # time runs ~200 times faster here: the workspace's write budget too
            slack_config={"stream_lifetime": 1.0, "writes_per_minute": 16_000},
        ) as rig,
    ):
        ts = await slack.user_message(DM, USER, "talk for a while")
        await rig.answer(DM, ts, END, timeout=30)
        messages = rig.replies(DM, ts)
        assert len(messages) >= 2 and all(m.streaming == "completed" for m in messages)
        assert "".join(shown(rig, DM, ts)) == text
        started = slack.calls_to("chat.startStream")
        assert len(started) == len(messages) == len(slack.calls_to("chat.stopStream"))
        assert not slack.calls_to("chat.update")
        assert not [c for c in slack.calls if not c.ok]
