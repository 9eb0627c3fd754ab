"""Streaming cards within the limits: the update rate to one card never exceeds the declared
one during a fast stream; a long answer rolls over to further cards with nothing lost;
images and files both ways; token refresh and rate limits on the way."""

from __future__ import annotations

import itertools
import re
import struct
import zlib
from pathlib import Path

from feishu_adapter_kit import ALICE, feishu_hotplex
from hotplex_feishu.cards import CARD_LIMIT
from hotplex_feishu.operations import MAX_TEXT_BYTES

from hotplex.chat import DELIVERY
from hotplex.events import agent_event
from hotplex.testing.fakes import FakeProvider
from hotplex.testing.feishu import FakeFeishu


def png() -> bytes:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


async def test_a_fast_stream_never_updates_a_card_faster_than_declared(tmp_path: Path) -> None:
    words = [f"word{i} " for i in range(400)]
    turn = [agent_event("text_delta", text=w) for w in words]
    turn.append(agent_event("text", text="".join(words)))
    interval = 0.5
    async with (
        FakeFeishu() as fake,
        feishu_hotplex(
            tmp_path,
            fake,
            provider=FakeProvider([turn], delay=0.005),
            feishu={"min_update_interval": interval},
        ) as h,  # fmt: skip
    ):
        assert h.adapter.operations.capabilities.min_update_interval == interval
        chat = fake.p2p_chat(ALICE)
        await fake.user_message(chat, ALICE, "go")
        reply = await h.answer(lambda t: "word399" in t and "\n\n" in t)
        card = fake.cards[reply.card_id]
        times = [op.time for op in card.history]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        contents = [op for op in card.history if op.name == "card_element.content"]
        assert len(contents) >= 3, "the text did not stream"
        assert min(gaps) >= interval - 0.02, gaps
        texts = [op.content or "" for op in contents if op.element_id == "answer"]
        assert all(b.startswith(a) for a, b in itertools.pairwise(texts))
        assert card.text.count("word399") == 1


async def test_a_long_answer_rolls_over_to_more_cards_with_nothing_lost(tmp_path: Path) -> None:
    paragraphs = [f"段落{i}: " + "中文字符与 mixed text " * 12 for i in range(160)]
    answer = "\n\n".join(paragraphs)
    assert len(answer.encode()) > 2 * MAX_TEXT_BYTES
    chunks = [answer[i : i + 300] for i in range(0, len(answer), 300)]
    turn = [agent_event("text_delta", text=c) for c in chunks]
    turn.append(agent_event("text", text=answer))
    async with (
        FakeFeishu() as fake,
        feishu_hotplex(tmp_path, fake, provider=FakeProvider([turn])) as h,
    ):
        chat = fake.p2p_chat(ALICE)
        await fake.user_message(chat, ALICE, "long")
        await h.answer(lambda t: "段落159" in t and re.search(r"\n\n[0-9.]+ s$", t) is not None)
        replies = [m for m in h.bot_messages(chat) if m.card_id]
        assert len(replies) >= 3
        for reply in replies:
            card = fake.cards[reply.card_id]
            assert not card.streaming_mode
            shown = card.element_text("answer") or ""
            assert len(shown.encode()) <= MAX_TEXT_BYTES + 200  # the footer joins the last
        joined = "".join(fake.cards[m.card_id].element_text("answer") or "" for m in replies)
        assert re.sub(r"\s", "", joined).startswith(re.sub(r"\s", "", answer))
        assert all(len(str(m.card).encode()) < CARD_LIMIT * 2 for m in replies)


async def test_an_image_sent_to_the_bot_reaches_the_work_directory(tmp_path: Path) -> None:
    image = png()
    async with (
        FakeFeishu() as fake,
        feishu_hotplex(tmp_path, fake) as h,
    ):
        chat = fake.p2p_chat(ALICE)
        await fake.user_message(chat, ALICE, "what is this?", image=image)
        await h.answer(lambda t: "echo: what is this?" in t and "tokens" in t)
        await fake.user_message(chat, ALICE, file=("notes.txt", b"some notes"))
        await h.answer(lambda t: "notes.txt" in t and "tokens" in t)
        process = h.provider.processes[0]
        shown = [Path(p) for turn in process.images for p in turn]
        assert len(shown) == 1 and shown[0].read_bytes() == image
        folder = shown[0].parent
        assert folder.name == "attachments"
        assert (folder / "notes.txt").read_bytes() == b"some notes"
        assert "attachments/notes.txt" in process.prompts[1]


async def test_send_file_uploads_and_posts_images_and_files(tmp_path: Path) -> None:
    async with (
        FakeFeishu() as fake,
        feishu_hotplex(tmp_path, fake) as h,
    ):
        chat = fake.p2p_chat(ALICE)
        report = tmp_path / "report.pdf"
        report.write_bytes(b"%PDF-1.4 fake")
        picture = tmp_path / "chart.png"
        picture.write_bytes(png())
        router = h.hp.runtime.ctx.services.get(DELIVERY)
        address = f"feishu:{fake.tenant_key}/{chat}"
        await router.send_file(address, report, title="The report")
        await router.send_file(address, picture)
        posted = {m.msg_type: m for m in h.bot_messages(chat)}
        assert fake.resource(posted["file"].content["file_key"]) == b"%PDF-1.4 fake"
        assert fake.resource(posted["image"].content["image_key"]) == picture.read_bytes()
        assert any("The report" in m.text for m in h.bot_messages(chat))


async def test_an_invalid_token_is_refreshed_once_and_a_rate_limit_is_waited_out(
    tmp_path: Path,
) -> None:
    async with (
        FakeFeishu() as fake,
        feishu_hotplex(tmp_path, fake) as h,
    ):
        chat = fake.p2p_chat(ALICE)
        fake.expire_tokens()
        fake.fail_next("card.create", 99991400, status=429)
        await fake.user_message(chat, ALICE, "still works")
        await h.answer(lambda t: "echo: still works" in t and "tokens" in t)
        assert len(fake.calls_named("tenant_access_token.internal")) == 2
        assert [c.code for c in fake.calls_named("card.create")][:1] == [99991400]
