"""A DM and a channel @-mention get a streamed reply in the right thread, the thread's next
message reuses the hot session, one @-mention starts one turn, and what is not a person
speaking to the bot starts nothing: in Socket Mode and in HTTP mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from slack_kit import CHANNEL, DM, MODES, OTHER, USER, Mode, slack_hotplex, workspace

from hotplex.testing.slack import FakeSlack

pytestmark = pytest.mark.parametrize("mode", MODES)


async def test_a_dm_gets_a_streamed_reply_in_its_thread(tmp_path: Path, mode: Mode) -> None:
    async with FakeSlack() as slack, slack_hotplex(tmp_path, workspace(slack), mode=mode) as rig:
        ts = await slack.user_message(DM, USER, "hello there")
        answer = await rig.answer(DM, ts, "echo: hello there")
        assert answer.thread_ts == ts
        assert answer.streaming == "completed"  # natively streamed
        started = slack.calls_to("chat.startStream")
        assert started and started[0].args["thread_ts"] == ts


async def test_a_mention_starts_one_turn_and_the_thread_stays_hot(
    tmp_path: Path, mode: Mode
) -> None:
    async with FakeSlack() as slack, slack_hotplex(tmp_path, workspace(slack), mode=mode) as rig:
        ts = await slack.user_message(CHANNEL, USER, "look at this", mention=True)
        await rig.answer(CHANNEL, ts, "echo: look at this")
        # the same post came as message and app_mention: both were taken, one turn ran
        await slack.wait_for(lambda: all(d.acked for d in slack.deliveries))
        assert len(slack.deliveries) == 2
        second = await slack.user_message(CHANNEL, OTHER, "and this?", thread_ts=ts)
        answer = await rig.answer(CHANNEL, ts, "echo: and this?")
        assert answer.thread_ts == ts and second != ts
        (process,) = rig.provider.processes  # one hot session for the thread
        assert process.prompts == ["look at this", "and this?"]
        echoes = [m for m in rig.replies(CHANNEL, ts) if m.text.startswith("echo:")]
        assert len(echoes) == 2


async def test_chatter_edits_joins_and_bots_start_nothing(tmp_path: Path, mode: Mode) -> None:
    async with FakeSlack() as slack, slack_hotplex(tmp_path, workspace(slack), mode=mode) as rig:
        chatter = await slack.user_message(CHANNEL, USER, "just chatting")
        await slack.user_edit(CHANNEL, chatter, f"<@{slack.bot_user_id}> edited in a mention")
        await slack.user_joins(CHANNEL, "U3")
        await slack.bot_message(CHANNEL, f"<@{slack.bot_user_id}> a bot asks")
        await slack.user_delete(CHANNEL, chatter)
        ts = await slack.user_message(CHANNEL, USER, "the real one", mention=True)
        await rig.answer(CHANNEL, ts, "echo: the real one")
        await slack.wait_for(lambda: all(d.acked for d in slack.deliveries))
        assert [p.prompts for p in rig.provider.processes] == [["the real one"]]


async def test_multi_bot_mode_answers_only_what_mentions_this_bot(
    tmp_path: Path, mode: Mode
) -> None:
    config = {"multi_bot": True, "group_policy": "open"}
    async with (
        FakeSlack() as slack,
        slack_hotplex(tmp_path, workspace(slack), mode=mode, slack_config=config) as rig,
    ):
        slack.add_user("UOTHERBOT", is_bot=True)
        other = await slack.user_message(CHANNEL, USER, "<@UOTHERBOT> yours")
        ts = await slack.user_message(CHANNEL, USER, "ours", mention=True)
        await rig.answer(CHANNEL, ts, "echo: ours")
        await slack.user_message(CHANNEL, USER, "<@UOTHERBOT> and you?", thread_ts=ts)
        mine = await slack.user_message(CHANNEL, USER, "again", mention=True, thread_ts=ts)
        await rig.answer(CHANNEL, ts, "echo: again")
        await slack.wait_for(lambda: all(d.acked for d in slack.deliveries))
        assert [p.prompts for p in rig.provider.processes] == [["ours", "again"]]
        assert not rig.replies(CHANNEL, other) and mine != ts


async def test_a_followed_thread_is_followed_after_a_restart(tmp_path: Path, mode: Mode) -> None:
    """The thread the bot was called into has a session: after a restart (the followed
    threads in memory are gone) a reply there without a mention is still answered; a reply
    in a thread the bot never joined is not."""
    async with FakeSlack() as slack:
        workspace(slack)
        async with slack_hotplex(tmp_path, slack, mode=mode) as rig:
            ts = await slack.user_message(CHANNEL, USER, "look at this", mention=True)
            await rig.answer(CHANNEL, ts, "echo: look at this")
            chatter = await slack.user_message(CHANNEL, OTHER, "just chatting")
        async with slack_hotplex(tmp_path, slack, mode=mode) as rig:
            await slack.user_message(CHANNEL, USER, "not for the bot", thread_ts=chatter)
            await slack.user_message(CHANNEL, OTHER, "and now?", thread_ts=ts)
            answer = await rig.answer(CHANNEL, ts, "echo: and now?")
            assert answer.thread_ts == ts
            assert [p.prompts for p in rig.provider.processes] == [["and now?"]]
            assert not rig.replies(CHANNEL, chatter)
            # read as addressed to the bot, as before the restart: a command is one
            await slack.user_message(CHANNEL, USER, "/status", thread_ts=ts)
            await slack.wait_for(
                lambda: [e for e in slack.ephemerals if e.text.startswith("Session")]
            )
