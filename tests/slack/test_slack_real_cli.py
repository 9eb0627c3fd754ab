"""The real Claude Code CLI, with the fake Anthropic API, answers a DM through the fake
Slack (Socket Mode): the whole path, with nothing of the agent faked in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from slack_kit import DM, USER, slack_hotplex, workspace

from hotplex.testing.fake_anthropic import FakeAnthropic
from hotplex.testing.slack import FakeSlack

pytestmark = pytest.mark.real_cli


async def test_the_real_cli_answers_a_dm(
    fake_api: FakeAnthropic, claude_binary: Path, tmp_path: Path
) -> None:
    async with (
        FakeSlack() as slack,
        slack_hotplex(tmp_path, workspace(slack), claude=claude_binary) as rig,
    ):
        ts = await slack.user_message(DM, USER, "hello from slack")
        answer = await rig.answer(DM, ts, "echo: hello from slack", timeout=45)
        assert answer.thread_ts == ts
        assert slack.calls_to("chat.startStream")
        assert "hello from slack" in str([r.messages for r in fake_api.requests])
