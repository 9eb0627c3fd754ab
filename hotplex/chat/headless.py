"""Operations for a platform whose caller takes each turn's events itself."""

from __future__ import annotations

from hotplex.address import AddressLike
from hotplex.interfaces import MessageOperations
from hotplex.types import ApprovalRequest, MessageRef

__all__ = ["HeadlessOperations"]


class HeadlessOperations(MessageOperations):
    """``MessageOperations`` that post nothing, for an adapter whose messages go through
    ``ChatBridge.handle(..., render=False)``: the caller streams the turn's events and
    answers with the dispatcher's replies itself (the gateway to its WebSocket and SSE
    clients, a webhook trigger in its HTTP response). An approval request is on the turn's
    event stream the caller follows, so its "card" is only a reference."""

    async def send(self, address: AddressLike, text: str) -> MessageRef:
        return MessageRef(address=str(address), message_id="")

    async def update(self, ref: MessageRef, text: str) -> None:
        return None

    async def delete(self, ref: MessageRef) -> None:
        return None

    async def ask_approval(self, request: ApprovalRequest) -> MessageRef:
        return MessageRef(address=request.address or "", message_id=request.permission_id)
