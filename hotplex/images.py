"""Images an agent can be shown: the formats the Anthropic Messages API takes (PNG, JPEG,
GIF, WebP), recognised by their first bytes (never by a file name), and the API's size
limit."""

from __future__ import annotations

__all__ = ["IMAGE_TYPES", "MAX_IMAGE_BYTES", "sniff_image"]

#: The media types an image content block may carry.
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")

#: The API refuses an image whose base64 data is over 5 MB (5,242,880 bytes); this is the
#: largest file whose base64 encoding stays within it.
MAX_IMAGE_BYTES = 5 * 1024 * 1024 // 4 * 3


def sniff_image(data: bytes) -> str | None:
    """The media type of ``data`` when it starts like a PNG, JPEG, GIF or WebP file."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None
