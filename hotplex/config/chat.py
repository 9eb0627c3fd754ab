"""The ``chat`` section: how core's chat layer treats what people send."""

from __future__ import annotations

from pydantic import Field

from hotplex.config.base import Duration, Section

__all__ = ["AttachmentSettings", "ChatSettings"]


class AttachmentSettings(Section):
    enabled: bool = Field(True, description="Save a message's files into the work directory.")
    max_bytes: int = Field(
        20 * 1024 * 1024, ge=1, description="Largest file accepted (bytes); larger are refused."
    )
    max_message_bytes: int = Field(
        50 * 1024 * 1024, ge=1, description="Largest total of one message's files (bytes)."
    )
    max_files: int = Field(10, ge=1, le=100, description="Most files taken from one message.")
    timeout: Duration = Field(60.0, description="Time allowed to download one file.")
    folder: str = Field(
        "attachments",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Folder of the session's work directory the files land in.",
    )


class ChatSettings(Section):
    attachments: AttachmentSettings = Field(default_factory=AttachmentSettings)
