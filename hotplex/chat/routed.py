"""``MessageOperations`` for one platform that wait, bounded, for its adapter on every
call (:meth:`hotplex.chat.router.Router.operations_for`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hotplex.address import Address, AddressLike
from hotplex.errors import DeliveryError
from hotplex.interfaces import MessageOperations
from hotplex.types import ApprovalOutcome, ApprovalRequest, ChatCapabilities, MessageRef

if TYPE_CHECKING:
    from hotplex.chat.router import Router

__all__ = ["RoutedOperations"]


class RoutedOperations(MessageOperations):
    def __init__(self, router: Router, address: Address) -> None:
        self._router = router
        self._address = address

    async def _ops(self) -> MessageOperations:
        return await self._router.wait_for(self._address)

    @property
    def capabilities(self) -> ChatCapabilities:
        found = self._router.endpoint(self._address.platform)
        if found is None:
            raise DeliveryError(
                f"{self._address}: no chat adapter owns the platform "
                f"{self._address.platform!r} yet; await the router's wait_for(address) first"
            )
        return found.operations.capabilities

    async def send(self, address: AddressLike, text: str) -> MessageRef:
        return await (await self._ops()).send(address, text)

    async def update(self, ref: MessageRef, text: str) -> None:
        await (await self._ops()).update(ref, text)

    async def delete(self, ref: MessageRef) -> None:
        await (await self._ops()).delete(ref)

    async def start_stream(self, address: AddressLike, text: str = "") -> MessageRef:
        return await (await self._ops()).start_stream(address, text)

    async def append_stream(self, ref: MessageRef, delta: str) -> None:
        await (await self._ops()).append_stream(ref, delta)

    async def stop_stream(self, ref: MessageRef, delta: str = "") -> None:
        await (await self._ops()).stop_stream(ref, delta)

    async def set_status(self, address: AddressLike, status: str | None) -> None:
        await (await self._ops()).set_status(address, status)

    async def ask_approval(self, request: ApprovalRequest) -> MessageRef:
        return await (await self._ops()).ask_approval(request)

    async def update_approval(
        self, ref: MessageRef, request: ApprovalRequest, outcome: ApprovalOutcome
    ) -> None:
        await (await self._ops()).update_approval(ref, request, outcome)

    async def react(self, ref: MessageRef, emoji: str) -> None:
        await (await self._ops()).react(ref, emoji)

    async def reply_ephemeral(self, address: AddressLike, user: str, text: str) -> None:
        await (await self._ops()).reply_ephemeral(address, user, text)

    async def upload_file(self, address: AddressLike, path: Path, title: str = "") -> MessageRef:
        return await (await self._ops()).upload_file(address, path, title)
