"""The chat platform ``cron``: a run is one more inbound message through core's chat bridge.

Its conversations are ``cron:jobs/<job>`` (a persistent session) and
``cron:jobs/<job>/<run>`` (a fresh session per run). The scheduler hands each run's message
to :meth:`hotplex.chat.ChatBridge.handle` with this adapter (so the WAF, approvals, audit
and storage apply as to any chat message) and renders the answer itself. What core renders
into a cron conversation on its own (a run a restart interrupted, a stored message
replayed after a crash) goes, through :class:`CronOperations`, to the job's targets.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path

from hotplex.address import Address, AddressLike
from hotplex.interfaces import ChatAdapter, MessageOperations
from hotplex.types import ApprovalRequest, ChatCapabilities, IncomingMessage, MessageRef

__all__ = ["PLATFORM", "CronAdapter", "CronOperations", "Forward", "job_of"]

PLATFORM = "cron"
WORKSPACE = "jobs"

#: ``forward(job name, text)``: send core's words about a run to the job's targets.
Forward = Callable[[str, str], Awaitable[None]]


def job_of(address: AddressLike) -> str:
    """The job a cron conversation belongs to."""
    return Address.of(address).channel


class CronOperations(MessageOperations):
    """Final text only (``streaming: send``), no limit worth splitting at, no escaping
    (each target's own adapter escapes)."""

    capabilities = ChatCapabilities(
        max_message_length=100_000, streaming="send", min_update_interval=0.0
    )

    def __init__(self, forward: Forward) -> None:
        self._forward = forward
        self._ids = itertools.count(1)

    async def send(self, address: AddressLike, text: str) -> MessageRef:
        await self._forward(job_of(address), text)
        return MessageRef(str(address), f"cron-{next(self._ids)}")

    async def update(self, ref: MessageRef, text: str) -> None:
        await self._forward(job_of(ref.address), text)

    async def delete(self, ref: MessageRef) -> None:
        return None

    async def ask_approval(self, request: ApprovalRequest) -> MessageRef:
        # an unattended run's policy decides (deny, allow_tools) or routes the card to a
        # person elsewhere (route_to); nobody reads a card in a cron conversation
        raise NotImplementedError("cron conversations show no approval cards")

    async def upload_file(self, address: AddressLike, path: Path, title: str = "") -> MessageRef:
        raise NotImplementedError("a cron run cannot send files; name a path in its answer")


class CronAdapter(ChatAdapter):
    """Receives nothing from outside: runs come from the scheduler, which calls the chat
    bridge with this adapter directly."""

    name = PLATFORM
    platform = PLATFORM

    def __init__(self, forward: Forward) -> None:
        self._operations = CronOperations(forward)

    @property
    def operations(self) -> MessageOperations:
        return self._operations

    async def run(self, deliver: Callable[[IncomingMessage], Awaitable[None]]) -> None:
        await asyncio.Event().wait()  # until cancelled at shutdown
