"""Tool approvals as Block Kit cards: a stranger's press is refused only to them, the
approver's press lets the turn finish and the card says who; Deny asks for a reason the
agent receives; a WAF-asked prompt uses the same card. Socket Mode and HTTP mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hotplex_slack.cards import ALLOW_ONCE, ALLOW_SESSION, DENY
from slack_kit import CHANNEL, DM, MODES, OTHER, USER, Mode, SlackRig, slack_hotplex, workspace

from hotplex.testing.fakes import FakeProvider, ToolCall
from hotplex.testing.slack import FakeSlack, Message

pytestmark = pytest.mark.parametrize("mode", MODES)


def has_buttons(message: Message) -> bool:
    return any(block.get("type") == "actions" for block in message.blocks or ())


async def closed(slack: FakeSlack, ts: str) -> Message:
    """The card once it lost its buttons (decided or expired)."""
    return await slack.wait_for(lambda: None if has_buttons(m := slack.message(ts)) else m)


async def card_in(rig: SlackRig, channel: str, thread: str) -> Message:
    def found() -> Message | None:
        return next((m for m in rig.replies(channel, thread) if has_buttons(m)), None)

    return await rig.slack.wait_for(found)


async def test_a_stranger_is_refused_and_the_approver_lets_the_turn_finish(
    tmp_path: Path, mode: Mode
) -> None:
    provider = FakeProvider([[ToolCall("Bash", {"command": "make"}, "built", say_result=True)]])
    async with (
        FakeSlack() as slack,
        slack_hotplex(tmp_path, workspace(slack), mode=mode, provider=provider) as rig,
    ):
        ts = await slack.user_message(CHANNEL, USER, "build it", mention=True)
        card = await card_in(rig, CHANNEL, ts)
        actions = next(b for b in card.blocks or () if b["type"] == "actions")["elements"]
        assert [a["action_id"] for a in actions] == [ALLOW_ONCE, ALLOW_SESSION, DENY]
        assert "make" in json.dumps(card.blocks)

        await slack.click_button(card.ts, ALLOW_ONCE, OTHER)
        refused = await slack.wait_for(lambda: [e for e in slack.ephemerals if e.user == OTHER])
        assert "may not decide" in refused[0].text
        assert has_buttons(slack.message(card.ts))  # still open

        await slack.click_button(card.ts, ALLOW_ONCE, USER)
        await rig.answer(CHANNEL, ts, "tool said: built")
        decided = await closed(slack, card.ts)
        assert f"allowed by slack:{USER}" in json.dumps(decided.blocks)


async def test_deny_asks_for_a_reason_that_reaches_the_agent(tmp_path: Path, mode: Mode) -> None:
    provider = FakeProvider([[ToolCall("Bash", {"command": "rm -r build"}, say_result=True)]])
    async with (
        FakeSlack() as slack,
        slack_hotplex(tmp_path, workspace(slack), mode=mode, provider=provider) as rig,
    ):
        ts = await slack.user_message(DM, USER, "clean up")
        card = await card_in(rig, DM, ts)
        await slack.click_button(card.ts, DENY, USER)
        await slack.wait_for(lambda: [v for v in slack.views if not v.closed])
        await slack.submit_view(values={"reason": {"reason_input": "keep the build"}})
        answer = await rig.answer(DM, ts, "tool error:")
        assert "keep the build" in answer.text
        decided = await closed(slack, card.ts)
        assert f"denied by slack:{USER}" in json.dumps(decided.blocks)


async def test_a_prompt_the_firewall_asks_about_uses_the_same_card(
    tmp_path: Path, mode: Mode
) -> None:
    async with FakeSlack() as slack, slack_hotplex(tmp_path, workspace(slack), mode=mode) as rig:
        # Slack sends what a person wrote with &, < and > as entities
        ts = await slack.user_message(DM, USER, "append a line: echo hi &gt;&gt; ~/.bashrc")
        card = await card_in(rig, DM, ts)
        assert "echo hi &gt;&gt; ~/.bashrc" in json.dumps(card.blocks)
        assert not rig.provider.processes  # the prompt waits for a person
        await slack.click_button(card.ts, ALLOW_ONCE, USER)
        await rig.answer(DM, ts, "echo: append a line")
        (process,) = rig.provider.processes
        assert process.prompts == ["append a line: echo hi >> ~/.bashrc"]
