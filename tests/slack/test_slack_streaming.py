"""The streaming ladder: native streams; a workspace that refuses them gets
chat.postMessage plus chat.update with nothing lost; a stream the user stopped interrupts
the turn and is written no more; the status goes to the assistant thread, or to a context
line where Slack refuses that."""

from __future__ import annotations

import asyncio
from pathlib import Path

from slack_kit import DM, USER, slack_hotplex, workspace

from hotplex import Address
from hotplex.events import agent_event
from hotplex.testing.fakes import FakeProvider
from hotplex.testing.slack import FakeSlack

WORDS = [f"word{i} " for i in range(30)]
TEXT = "".join(WORDS).strip()


def slow_turn() -> list[object]:
    return [
        agent_event("thinking", text="hmm"),
        *[agent_event("text_delta", text=w) for w in WORDS],
        agent_event("text", text=TEXT),
    ]


async def test_a_workspace_without_streams_gets_post_and_update(tmp_path: Path) -> None:
    provider = FakeProvider([slow_turn(), slow_turn()], delay=0.02)  # type: ignore[list-item]
    async with (
        FakeSlack() as slack,
        slack_hotplex(tmp_path, workspace(slack), provider=provider) as rig,
    ):
        slack.streaming_enabled = False  # chat.*Stream answer unknown_method
        ts = await slack.user_message(DM, USER, "first")
        answer = await rig.answer(DM, ts, TEXT)
        assert answer.text.startswith(TEXT) and answer.streaming is None
        assert [c.outcome for c in slack.calls_to("chat.startStream")] == ["unknown_method"]
        assert slack.calls_to("chat.update")
        assert rig.adapter.operations.capabilities.streaming == "edit"
        second = await slack.user_message(DM, USER, "second")  # no stream tried again
        await rig.answer(DM, second, TEXT)
        assert len(slack.calls_to("chat.startStream")) == 1


async def test_a_stream_the_user_stopped_interrupts_the_turn(tmp_path: Path) -> None:
    """The user's stop button on the stream: Slack answers the next write
    ``stopped_by_user``, the turn is interrupted through core and its message is not
    written again (no chat.update carrying the rest)."""
    provider = FakeProvider([slow_turn()], delay=0.05)  # type: ignore[list-item]
    async with (
        FakeSlack() as slack,
        slack_hotplex(tmp_path, workspace(slack), provider=provider) as rig,
    ):
        ts = await slack.user_message(DM, USER, "talk")
        (started,) = await slack.wait_calls("chat.startStream")
        stream_ts = next(m.ts for m in rig.replies(DM, ts) if m.streaming == "in_progress")
        key = str(Address("slack", slack.team_id, DM, ts))
        session = rig.engine.get(rig.engine.session_id(key))
        assert session is not None and started.ok
        events = session.subscribe()
        slack.stop_stream_by_user(stream_ts)

        async def ended() -> str:
            async for event in events:
                if event.type == "done":
                    return str(event.data["status"])
            raise AssertionError("the session ended without its turn's done")

        assert await asyncio.wait_for(ended(), 10) == "interrupted"
        # the next turn of the conversation is answered, so the stopped one finished
        after = await slack.user_message(DM, USER, "again")
        await rig.answer(DM, after, "echo: again")
        writes = [
            c
            for method in ("chat.appendStream", "chat.stopStream", "chat.update")
            for c in slack.calls_to(method)
            if c.args.get("ts") == stream_ts
        ]
        assert [c.outcome for c in writes] == ["stopped_by_user"]
        stopped = slack.message(stream_ts)
        assert stopped.streaming == "stopped_by_user" and not stopped.text.startswith(TEXT)
        statuses = await slack.wait_for(  # no "thinking" left behind
            lambda: (
                (s := [s.status for s in slack.statuses if s.thread_ts == ts])[-1:] == [""] and s
            )
        )
        assert "thinking" in statuses[0]


async def test_the_status_goes_to_the_assistant_thread(tmp_path: Path) -> None:
    provider = FakeProvider([slow_turn()], delay=0.02)  # type: ignore[list-item]
    async with (
        FakeSlack() as slack,
        slack_hotplex(tmp_path, workspace(slack), provider=provider) as rig,
    ):
        ts = await slack.user_message(DM, USER, "think")
        await rig.answer(DM, ts, TEXT)
        statuses = await slack.wait_for(
            lambda: (
                (s := [s.status for s in slack.statuses if s.thread_ts == ts]) and s[-1] == "" and s
            )
        )
        assert "thinking" in statuses[0]  # then cleared


async def test_without_the_assistant_status_a_context_line_shows_it(tmp_path: Path) -> None:
    provider = FakeProvider([slow_turn()], delay=0.02)  # type: ignore[list-item]
    async with (
        FakeSlack() as slack,
        slack_hotplex(tmp_path, workspace(slack), provider=provider) as rig,
    ):
        slack.fail_next("assistant.threads.setStatus", "not_allowed", times=100)
        ts = await slack.user_message(DM, USER, "think")
        await rig.answer(DM, ts, TEXT)
        lines = await slack.wait_for(
            lambda: [m for m in slack.messages(DM, ts, include_deleted=True) if m.deleted]
        )
        assert "thinking" in lines[0].text and lines[0].by_bot
        assert [m.text for m in rig.replies(DM, ts) if "thinking" in m.text] == []
