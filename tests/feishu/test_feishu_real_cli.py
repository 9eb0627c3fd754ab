"""The real Claude Code CLI (pinned in node_modules) with the fake Anthropic API answers a
p2p message through the fake Feishu over the long connection."""

from __future__ import annotations

from pathlib import Path

import pytest
from feishu_adapter_kit import ALICE, feishu_hotplex

from hotplex.testing.fake_anthropic import FakeAnthropic
from hotplex.testing.feishu import FakeFeishu

pytestmark = pytest.mark.real_cli


async def test_claude_code_answers_a_p2p_message(
    fake_api: FakeAnthropic, claude_binary: Path, tmp_path: Path
) -> None:
    config = {"provider": {"type": "claude-code", "binary": str(claude_binary)}}
    async with (
        FakeFeishu() as fake,
        feishu_hotplex(tmp_path, fake, config=config) as h,
    ):
        chat = fake.p2p_chat(ALICE)
        await fake.user_message(chat, ALICE, "hello from feishu")
        reply = await h.answer(lambda t: "echo: hello from feishu" in t and "tokens" in t, 60.0)
        card = fake.cards[reply.card_id]
        assert not card.streaming_mode, [(o.name, o.element_id, o.content) for o in card.history]
        assert any("hello from feishu" in str(r.messages) for r in fake_api.requests)
