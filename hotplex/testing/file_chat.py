"""A chat platform kept in files, for tests that run ``hotplex serve`` as a process and
restart it: plugin ``filechat`` (entry point ``hotplex.testing.file_chat``).

The test appends events to ``<directory>/inbox.jsonl`` (:func:`post`); the adapter reads
the file from its start every time it runs, so a restarted daemon gets every event again,
the way a platform redelivers events it saw no answer for (dedup must drop those already
stored). Every call of its ``MessageOperations`` is appended to
``<directory>/outbox.jsonl`` with the daemon's pid (:func:`read_outbox`); message ids are
unique across restarts. Addresses are ``filechat:<workspace>/<channel>[/<thread>]``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from hotplex.address import AddressLike
from hotplex.config import PluginSettings
from hotplex.context import PluginContext
from hotplex.hookspecs import hookimpl
from hotplex.interfaces import ChatAdapter, MessageOperations
from hotplex.records import ChatAdapterSpec, ConfigSection
from hotplex.types import ApprovalRequest, ChatCapabilities, IncomingMessage, MessageRef

__all__ = ["FileChatAdapter", "FileChatSettings", "post", "read_outbox"]

_POLL = 0.02


class FileChatSettings(PluginSettings):
    enabled: bool = Field(False, description="Run the file-backed test chat platform.")
    directory: str = Field("", description="Folder of inbox.jsonl and outbox.jsonl.")
    session_scope: Literal["thread", "channel", "user"] = Field("thread", description="Scope.")
    min_update_interval: float = Field(0.05, description="Seconds between writes.")


def post(directory: Path, **event: Any) -> None:
    """Append an event: ``post(d, id="1", channel="C1", user="U1", text="hi", direct=True)``
    (also ``thread``, ``mentions_bot``, ``from_bot``)."""
    with (directory / "inbox.jsonl").open("a", encoding="utf-8") as inbox:
        inbox.write(json.dumps(event) + "\n")


def read_outbox(directory: Path) -> list[dict[str, Any]]:
    """Every recorded call, in order: ``{"pid", "at", "method", "address", "id", "text"}``."""
    path = directory / "outbox.jsonl"
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


class FileChatOperations(MessageOperations):
    def __init__(self, directory: Path, min_update_interval: float) -> None:
        self._outbox = directory / "outbox.jsonl"
        self._caps = ChatCapabilities(min_update_interval=min_update_interval)
        self._count = 0

    @property
    def capabilities(self) -> ChatCapabilities:
        return self._caps

    def _write(self, method: str, address: str, message_id: str, text: str | None) -> None:
        line = {
            "pid": os.getpid(),
            "at": time.time(),
            "method": method,
            "address": address,
            "id": message_id,
            "text": text,
        }
        with self._outbox.open("a", encoding="utf-8") as outbox:
            outbox.write(json.dumps(line) + "\n")

    def _ref(self, address: AddressLike) -> MessageRef:
        self._count += 1
        return MessageRef(str(address), f"{os.getpid()}-{self._count}")

    async def send(self, address: AddressLike, text: str) -> MessageRef:
        ref = self._ref(address)
        self._write("send", ref.address, ref.message_id, text)
        return ref

    async def update(self, ref: MessageRef, text: str) -> None:
        self._write("update", ref.address, ref.message_id, text)

    async def delete(self, ref: MessageRef) -> None:
        self._write("delete", ref.address, ref.message_id, None)

    async def ask_approval(self, request: ApprovalRequest) -> MessageRef:
        ref = self._ref(request.address or "")
        self._write("ask_approval", ref.address, ref.message_id, request.permission_id)
        return ref


class FileChatAdapter(ChatAdapter):
    name = "filechat"
    platform = "filechat"

    def __init__(self, directory: Path, settings: FileChatSettings) -> None:
        self._directory = directory
        self._operations = FileChatOperations(directory, settings.min_update_interval)

    @property
    def operations(self) -> FileChatOperations:
        return self._operations

    async def run(self, deliver: Callable[[IncomingMessage], Awaitable[None]]) -> None:
        inbox = self._directory / "inbox.jsonl"
        offset = 0
        while True:  # until cancelled
            data = inbox.read_bytes() if inbox.exists() else b""
            end = data.rfind(b"\n") + 1
            for line in data[offset:end].splitlines():
                await deliver(self.to_message(json.loads(line)))
            offset = max(offset, end)
            await asyncio.sleep(_POLL)

    def to_message(self, event: dict[str, Any]) -> IncomingMessage:
        address = f"filechat:w/{event['channel']}"
        if event.get("thread"):
            address += f"/{event['thread']}"
        return IncomingMessage(
            address=address,
            text=str(event["text"]),
            user=f"filechat:{event['user']}",
            platform="filechat",
            event_id=f"Ev{event['id']}",
            message_key=f"filechat:{event['channel']}:{event['id']}",
            ref=MessageRef(address, str(event["id"])),
            direct=bool(event.get("direct", False)),
            mentions_bot=bool(event.get("mentions_bot", False)),
            from_bot=bool(event.get("from_bot", False)),
        )


def _factory(ctx: PluginContext, config: BaseModel) -> ChatAdapter:
    assert isinstance(config, FileChatSettings)
    directory = Path(config.directory)
    directory.mkdir(parents=True, exist_ok=True)
    return FileChatAdapter(directory, config)


@hookimpl
def hotplex_add_config() -> ConfigSection:
    return ConfigSection("filechat", FileChatSettings, "A chat platform kept in files (tests).")


@hookimpl
def hotplex_register_chat_adapters() -> list[ChatAdapterSpec]:
    return [ChatAdapterSpec("filechat", _factory, "A chat platform kept in files (tests)")]
