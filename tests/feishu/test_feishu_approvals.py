"""Approvals on the card: a tool request puts buttons on a card, a non-approver is refused,
the approver's click completes the turn and the card shows who; a double click applies
once; over the long connection and the webhook."""

from __future__ import annotations

from pathlib import Path

import pytest
from feishu_adapter_kit import ALICE, BOB, feishu_hotplex

from hotplex.testing.fakes import FakeProvider, ToolCall
from hotplex.testing.feishu import FakeFeishu


def buttons(card: dict[str, object]) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("tag") == "button":
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return found


def value_of(card: dict[str, object], decision: str, scope: str = "once") -> dict[str, object]:
    for button in buttons(card):
        value = button["behaviors"][0]["value"]  # type: ignore[index]
        if value["decision"] == decision and value["scope"] == scope:  # type: ignore[index]
            return value  # type: ignore[no-any-return]
    raise AssertionError(f"no {decision}/{scope} button on {card}")


@pytest.mark.parametrize("mode", ["ws", "webhook"])
async def test_the_approver_decides_on_the_card_and_a_stranger_cannot(
    tmp_path: Path, mode: str
) -> None:
    provider = FakeProvider([[ToolCall("Bash", {"command": "make"}, output="built",
                                       say_result=True)]])  # fmt: skip
    async with (
        FakeFeishu(encrypt_key="ek" if mode == "webhook" else "") as fake,
        feishu_hotplex(tmp_path, fake, mode=mode, provider=provider) as h,
    ):
        chat = fake.p2p_chat(ALICE)
        await fake.user_message(chat, ALICE, "build it")
        card_message = await h.answer(lambda t: "Approve Bash" in t)
        assert len(buttons(card_message.card)) == 3
        assert "make" in card_message.text

        refused = await fake.click_card(card_message.message_id, value_of(card_message.card,
                                        "allow"), BOB)  # fmt: skip
        assert refused.toast is not None and refused.toast["type"] == "error"
        assert "only its approvers" in refused.toast["content"]
        assert len(buttons(fake.message(card_message.message_id).card)) == 3  # still open

        answer = await fake.click_card(card_message.message_id, value_of(card_message.card,
                                       "allow"), ALICE)  # fmt: skip
        assert answer.toast is not None and answer.toast["type"] == "success"
        assert "allowed by feishu:ou_alice" in answer.toast["content"]
        await h.answer(lambda t: "tool said: built\n\n" in t)  # with its footer: ended
        decided = fake.message(card_message.message_id)
        assert "allowed by feishu:ou_alice" in decided.text and buttons(decided.card) == []

        # a second click applies nothing more and says how it stands
        again = await fake.click_card(card_message.message_id, value_of(card_message.card,
                                      "deny"), ALICE)  # fmt: skip
        assert again.toast is not None and "allowed by feishu:ou_alice" in again.toast["content"]
        assert [p.prompts for p in h.provider.processes] == [["build it"]]


async def test_allow_for_this_session(tmp_path: Path) -> None:
    provider = FakeProvider([
        [ToolCall("Bash", {"command": "ls"}, output="files", say_result=True)],
        [ToolCall("Bash", {"command": "ls"}, say_result=True)],
    ])  # fmt: skip
    async with (
        FakeFeishu() as fake,
        feishu_hotplex(tmp_path, fake, provider=provider) as h,
    ):
        chat = fake.p2p_chat(ALICE)
        await fake.user_message(chat, ALICE, "list")
        first = await h.answer(lambda t: "Approve Bash" in t)
        await fake.click_card(first.message_id, value_of(first.card, "allow", "session"), ALICE)
        await h.answer(lambda t: "tool said: files" in t)
        assert "(this session)" in fake.message(first.message_id).text
        await fake.user_message(chat, ALICE, "list again")
        # allowed for the session: no second card, the tool runs
        await h.answer(lambda t: "tool said: ok" in t)
        assert not any("Approve Bash" in t for t in h.texts())


async def test_deny_tells_the_agent(tmp_path: Path) -> None:
    provider = FakeProvider([[ToolCall("Bash", {"command": "rm -r x"}, say_result=True)]])
    async with (
        FakeFeishu() as fake,
        feishu_hotplex(tmp_path, fake, provider=provider) as h,
    ):
        chat = fake.p2p_chat(ALICE)
        await fake.user_message(chat, ALICE, "remove")
        card = await h.answer(lambda t: "Approve Bash" in t)
        answer = await fake.click_card(card.message_id, value_of(card.card, "deny"), ALICE)
        assert answer.toast is not None and "denied by feishu:ou_alice" in answer.toast["content"]
        await h.answer(lambda t: "tool error" in t)
        assert "denied by feishu:ou_alice" in fake.message(card.message_id).text


ASKED = "append a line: echo hi >> ~/.bashrc"


async def test_a_prompt_the_waf_asks_about_uses_the_same_card(tmp_path: Path) -> None:
    async with (
        FakeFeishu() as fake,
        feishu_hotplex(tmp_path, fake, provider=FakeProvider()) as h,
    ):
        chat = fake.p2p_chat(ALICE)
        await fake.user_message(chat, ALICE, ASKED)
        card = await h.answer(lambda t: "Approve the prompt" in t)
        assert "echo hi &gt;&gt; ~/.bashrc" in str(card.card)  # the prompt, escaped
        assert len(buttons(card.card)) == 2  # once or deny: a prompt has no session scope
        assert h.provider.processes == []
        answer = await fake.click_card(card.message_id, value_of(card.card, "allow"), ALICE)
        assert answer.toast is not None and answer.toast["type"] == "success"
        await h.answer(lambda t: "echo: append a line" in t and "tokens" in t)
        assert "allowed by feishu:ou_alice" in fake.message(card.message_id).text


async def test_the_card_shows_when_nobody_decided_in_time(tmp_path: Path) -> None:
    provider = FakeProvider([[ToolCall("Bash", {"command": "make"}, say_result=True)]])
    async with (
        FakeFeishu() as fake,
        feishu_hotplex(
            tmp_path, fake, provider=provider, config={"security": {"approval_timeout": "0.5s"}}
        ) as h,  # fmt: skip
    ):
        chat = fake.p2p_chat(ALICE)
        await fake.user_message(chat, ALICE, "build")
        card = await h.answer(lambda t: "Approve Bash" in t)
        await h.answer(lambda t: "tool error" in t)
        await fake.wait_for(lambda: "expired" in fake.message(card.message_id).text)
        assert buttons(fake.message(card.message_id).card) == []
        late = await fake.click_card(card.message_id, value_of(card.card, "allow"), ALICE)
        assert late.toast is not None and "expired" in late.toast["content"]
