"""Attachments reach the agent, send_file reaches the thread, chat commands are answered
ephemerally (the slash command and text to the bot)."""

from __future__ import annotations

from pathlib import Path

import pytest
from slack_kit import CHANNEL, DM, MODES, USER, Mode, slack_hotplex, workspace

from hotplex.agent_tools import AGENT_TOOLS
from hotplex.testing.slack import FakeSlack

pytestmark = pytest.mark.parametrize("mode", MODES)


async def test_an_attached_file_reaches_the_agent_and_send_file_the_thread(
    tmp_path: Path, mode: Mode
) -> None:
    async with FakeSlack() as slack, slack_hotplex(tmp_path, workspace(slack), mode=mode) as rig:
        files = [{"name": "data.csv", "content": "a,b\n1,2\n", "mimetype": "text/csv"}]
        ts = await slack.user_message(CHANNEL, USER, "what is in it?", mention=True, files=files)
        await rig.answer(CHANNEL, ts, "echo: what is in it?")
        (process,) = rig.provider.processes
        assert process.prompts == [
            "what is in it?\n\n[Attached file: attachments/data.csv (8 bytes)]"
        ]
        saved = process.spec.work_dir / "attachments" / "data.csv"
        assert saved.read_bytes() == b"a,b\n1,2\n"

        (saved.parent / "result.txt").write_text("the result\n")
        tools = rig.runtime.ctx.services.get(AGENT_TOOLS)
        result = await tools.call(
            {
                "name": "send_file",
                "arguments": {"path": "attachments/result.txt", "title": "Result"},
            },
            session=process.spec.session_id,
        )
        assert result["isError"] is False, result
        (upload,) = await slack.wait_for(lambda: slack.uploads)
        assert upload.content == b"the result\n" and upload.title == "Result"
        assert upload.channels == [CHANNEL] and upload.thread_ts == ts


async def test_the_slash_command_and_text_to_the_bot_are_answered_ephemerally(
    tmp_path: Path, mode: Mode
) -> None:
    async with FakeSlack() as slack, slack_hotplex(tmp_path, workspace(slack), mode=mode) as rig:
        await slack.slash_command("/hotplex", "help", USER, CHANNEL)
        helped = await slack.wait_for(
            lambda: [e for e in slack.ephemerals if "reset" in e.text and e.user == USER]
        )
        assert helped[0].channel == CHANNEL
        ts = await slack.user_message(CHANNEL, USER, "hello", mention=True)
        await rig.answer(CHANNEL, ts, "echo: hello")
        await slack.user_message(CHANNEL, USER, "/status", mention=True, thread_ts=ts)
        status = await slack.wait_for(
            lambda: [e for e in slack.ephemerals if e.text.startswith("Session")]
        )
        assert status[0].thread_ts == ts and "1 turns" in status[0].text
        await slack.user_message(DM, USER, "/hotplex nonsense")
        await slack.wait_for(lambda: [e for e in slack.ephemerals if "Unknown command" in e.text])
        # commands start no turn and leave no message in the conversation
        assert [p.prompts for p in rig.provider.processes] == [["hello"]]
        assert [m.text for m in rig.replies(CHANNEL, ts)] == [
            m.text for m in rig.replies(CHANNEL, ts) if "echo: hello" in m.text
        ]
