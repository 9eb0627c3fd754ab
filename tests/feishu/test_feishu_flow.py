"""A p2p message and a group @-mention each get a streaming card reply, over the long
connection and over the webhook (plain and encrypted); a reply in the thread reuses the
hot session; commands; a re-pushed event is handled once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from feishu_adapter_kit import ALICE, WAIT, Harness, feishu_hotplex

from hotplex.events import agent_event
from hotplex.testing.fakes import FakeProvider
from hotplex.testing.feishu import FakeFeishu

VIAS = ["ws", "webhook", "webhook-encrypted"]


@pytest.fixture(params=VIAS)
async def harness(request: Any, tmp_path: Path) -> AsyncIterator[Harness]:
    via = request.param
    key = "ek-secret" if via == "webhook-encrypted" else ""
    async with FakeFeishu(encrypt_key=key) as fake:
        mode = "ws" if via == "ws" else "webhook"
        async with feishu_hotplex(tmp_path, fake, mode=mode, provider=FakeProvider()) as h:
            yield h


def streamed(h: Harness, message: Any) -> None:
    """The message is a CardKit card that streamed and ended: content updates with
    increasing sequences, streaming turned off, the final card without the status line."""
    assert message.card_id, "the reply is not a CardKit card"
    card = h.fake.cards[message.card_id]
    names = [op.name for op in card.history]
    assert names[0] == "card.create" and "card.settings" in names, names
    assert card.sequences == sorted(set(card.sequences))
    assert not card.streaming_mode
    assert card.element("status") is None


async def test_a_p2p_message_gets_a_streaming_card(harness: Harness) -> None:
    h = harness
    chat = h.fake.p2p_chat(ALICE)
    await h.fake.user_message(chat, ALICE, "hello there")
    reply = await h.answer(lambda t: "echo: hello there" in t and "tokens" in t)
    assert reply.chat_id == chat and reply.msg_type == "interactive"
    streamed(h, reply)
    assert h.fake.deliveries[0].status == 200


async def test_a_group_mention_is_answered_in_its_thread_and_the_thread_stays_hot(
    harness: Harness,
) -> None:
    h = harness
    h.fake.add_chat("oc_team", "group", members=[ALICE, "ou_bob"])
    root = await h.fake.user_message("oc_team", ALICE, "first question", mention_bot=True)
    await h.fake.user_message("oc_team", "ou_bob", "chatter without a mention")
    first = await h.answer(lambda t: "echo: first question" in t and "tokens" in t)
    assert first.chat_id == "oc_team" and first.root_id == root
    streamed(h, first)
    # within the thread, no new mention needed: the same (hot) session answers
    await h.fake.user_message("oc_team", ALICE, "second question", root_id=root)
    second = await h.answer(lambda t: "echo: second question" in t and "tokens" in t)
    assert second.root_id == root
    assert len(h.provider.processes) == 1
    assert h.provider.processes[0].prompts == ["first question", "second question"]
    assert not any("chatter" in t for t in h.texts())


async def test_commands_are_answered_in_a_card(harness: Harness) -> None:
    h = harness
    chat = h.fake.p2p_chat(ALICE)
    await h.fake.user_message(chat, ALICE, "/help")
    reply = await h.answer(lambda t: "/reset" in t)
    assert reply.msg_type == "interactive"
    assert h.provider.processes == []


async def test_a_repushed_event_is_handled_once(tmp_path: Path) -> None:
    async with FakeFeishu() as fake:
        chat = fake.p2p_chat(ALICE)
        async with feishu_hotplex(tmp_path / "hp", fake, provider=FakeProvider()) as h:
            envelope = fake.prepare_user_message(chat, ALICE, "only once")
            await fake.deliver(envelope)
            await h.answer(lambda t: "echo: only once" in t and "tokens" in t)
            event_id = fake.deliveries[0].event_id
            again = await fake.repush(event_id)
            assert again.status == 200  # acked, as Feishu wants
            # the same message under a new event id: its message id stops it
            copy = json.loads(json.dumps(envelope))
            copy["header"]["event_id"] = "ev_other"
            assert (await fake.deliver(copy)).status == 200
            await fake.user_message(chat, ALICE, "next")
            await h.answer(lambda t: "echo: next" in t and "tokens" in t)
            assert h.provider.processes[0].prompts == ["only once", "next"]
        # after a restart (same data), the re-push still starts nothing
        async with feishu_hotplex(tmp_path / "hp", fake, provider=FakeProvider()) as h2:
            again = await fake.repush(event_id)
            assert again.status == 200
            await fake.user_message(chat, ALICE, "after restart")
            await h2.answer(lambda t: "echo: after restart" in t and "tokens" in t, WAIT)
            prompts = [p for proc in h2.provider.processes for p in proc.prompts]
            assert prompts == ["after restart"]


async def test_the_ack_does_not_wait_for_the_turn(harness: Harness) -> None:
    h = harness
    h.provider.queue_turn(agent_event("text_delta", text="thinking hard"),
                          agent_event("status", text="hang"))  # fmt: skip
    chat = h.fake.p2p_chat(ALICE)
    await h.fake.user_message(chat, ALICE, "a long job")
    assert h.fake.deliveries[-1].status == 200  # acked while the turn still runs
    await h.fake.wait_for(lambda: any("thinking hard" in t for t in h.texts()), WAIT)


async def test_the_bot_follows_its_thread_after_a_restart(tmp_path: Path) -> None:
    async with FakeFeishu() as fake:
        fake.add_chat("oc_team", "group", members=[ALICE])
        async with feishu_hotplex(tmp_path / "hp", fake) as h:
            root = await fake.user_message("oc_team", ALICE, "start here", mention_bot=True)
            await h.answer(lambda t: "echo: start here" in t and "tokens" in t)
        async with feishu_hotplex(tmp_path / "hp", fake) as h2:
            await fake.user_message("oc_team", ALICE, "unrelated chatter")
            await fake.user_message("oc_team", ALICE, "go on", root_id=root)
            reply = await h2.answer(lambda t: "echo: go on" in t and "tokens" in t)
            assert reply.root_id == root
            assert not any("unrelated" in t for t in h2.texts())
