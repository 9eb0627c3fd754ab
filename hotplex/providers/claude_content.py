"""The content of a Claude Code user message: the prompt as a text block, then each image
as an Anthropic image block (``{"type": "image", "source": {"type": "base64",
"media_type": ..., "data": ...}}``), which the CLI passes on to the Messages API."""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hotplex.images import MAX_IMAGE_BYTES, sniff_image

__all__ = ["image_block", "user_content"]

log = logging.getLogger(__name__)


def image_block(path: Path) -> dict[str, Any] | None:
    """The image block of ``path``, or None (logged) when it is not a regular file of a
    type the API takes (by content) or is over the API's limit."""
    try:
        if not path.is_file():
            raise OSError("not a regular file")
        if path.stat().st_size > MAX_IMAGE_BYTES:
            log.info("image %s is over %d bytes; not shown to the agent", path, MAX_IMAGE_BYTES)
            return None
        data = path.read_bytes()
    except OSError as exc:
        log.info("image %s cannot be read (%s); not shown to the agent", path, exc)
        return None
    media_type = sniff_image(data)
    if media_type is None or len(data) > MAX_IMAGE_BYTES:
        log.info("%s is not a PNG, JPEG, GIF or WebP image; not shown to the agent", path)
        return None
    encoded = base64.b64encode(data).decode("ascii")
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media_type, "data": encoded},
    }


def user_content(prompt: str, images: Sequence[Path] = ()) -> list[dict[str, Any]]:
    """The ``message.content`` list of a user line (reads the image files: call it off the
    event loop when there are images)."""
    blocks: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
    for path in images:
        block = image_block(path)
        if block is not None:
            blocks.append(block)
    return blocks
