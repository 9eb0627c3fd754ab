"""Images reach Claude Code as image content blocks of the user message, and from there the
Messages API request (the real pinned CLI and the fake Anthropic API)."""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from hotplex.config import ProviderSettings
from hotplex.images import MAX_IMAGE_BYTES
from hotplex.providers.claude_code import ClaudeCodeProvider
from hotplex.providers.claude_content import user_content
from hotplex.testing.conformance_kit import RecordingGate, close_turn, collect, run_turn
from hotplex.testing.fake_anthropic import FakeAnthropic, image_blocks, user_texts
from hotplex.types import AgentStartSpec

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
GIF = b"GIF89a" + b"\x00" * 20


def test_user_content_holds_the_text_then_each_image(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(PNG)
    (tmp_path / "b.jpg").write_bytes(GIF)  # named jpg, is a GIF: the content decides
    (tmp_path / "c.png").write_bytes(b"<svg/>")  # named png, is not an image the API takes
    (tmp_path / "big.png").write_bytes(PNG + b"\x00" * MAX_IMAGE_BYTES)
    (tmp_path / "dir.png").mkdir()
    paths = [tmp_path / n for n in ("a.png", "b.jpg", "c.png", "big.png", "dir.png", "gone.png")]
    content = user_content("what is this?", paths)
    assert content == [
        {"type": "text", "text": "what is this?"},
        {
            "type": "image",
            "source": {
                "type": "base64",
                "media_type": "image/png",
                "data": base64.b64encode(PNG).decode(),
            },
        },
        {
            "type": "image",
            "source": {
                "type": "base64",
                "media_type": "image/gif",
                "data": base64.b64encode(GIF).decode(),
            },
        },
    ]
    assert user_content("plain") == [{"type": "text", "text": "plain"}]


def user_message(fake_api: FakeAnthropic, text: str) -> dict[str, Any]:
    """The user message with ``text`` in the first Messages request that carries it."""
    for request in fake_api.message_requests:
        for message in request.messages:
            if message.get("role") == "user" and text in user_texts(message):
                return message
    raise AssertionError(f"no Messages request carried {text!r}")


@pytest.mark.real_cli
async def test_an_image_reaches_the_messages_request_as_an_image_block(
    claude_binary: Path, fake_api: FakeAnthropic, tmp_path: Path
) -> None:
    provider = ClaudeCodeProvider(ProviderSettings(binary=str(claude_binary)))
    work = tmp_path / "work"
    (work / "attachments").mkdir(parents=True)
    image = work / "attachments" / "dot.png"
    image.write_bytes(PNG)
    spec = AgentStartSpec(
        session_id="img",
        provider_session_id=str(uuid.uuid4()),
        resume=False,
        work_dir=work,
        state_dir=tmp_path / "state",
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path / "home"),
            "ANTHROPIC_BASE_URL": fake_api.base_url,
            "ANTHROPIC_API_KEY": "sk-test",
        },
    )
    agent = await provider.start(spec, RecordingGate("allow"))
    try:
        turn = agent.turn("describe the picture", images=[image])
        try:
            events = await collect(turn, 60.0)
        finally:
            await close_turn(turn)
        assert events[-1].type == "done" and events[-1].data["status"] == "ok"
        events = await run_turn(agent, "and now without one", 60.0)
        assert events[-1].data["status"] == "ok"
    finally:
        await agent.close(2.0)
        await provider.aclose()
    first = user_message(fake_api, "describe the picture")
    # the CLI passes the block on as sent (adding its own cache_control)
    assert [block["source"] for block in image_blocks(first)] == [
        {"type": "base64", "media_type": "image/png", "data": base64.b64encode(PNG).decode()}
    ]
    assert image_blocks(user_message(fake_api, "and now without one")) == []
