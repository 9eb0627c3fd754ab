"""``MessageOperations`` for web-chat sessions: how the delivery router posts into a web
conversation (``web:<key name>/<client session id>``).

A message becomes a ``message`` event (``{"text", "from"}``, no turn) on the stream of
that session (created if new): stored like every event, so a reload shows it, and sent
at once to the session's subscribers (the web chat page, WebSocket and SSE clients). The
page renders it as a message of its own. Web messages cannot be edited, so the
capabilities declare ``streaming="send"``; approval cards are the session's own
``permission_request`` events, which the page already shows with buttons.
"""

from __future__ import annotations

from collections.abc import Callable

from hotplex.address import Address, AddressLike
from hotplex.context import Services
from hotplex.engine import ENGINE, Engine
from hotplex.errors import AddressError, DeliveryError
from hotplex.events import AgentEvent
from hotplex.interfaces import MessageOperations
from hotplex.types import ApprovalRequest, ChatCapabilities, MessageRef

__all__ = ["WEB_CAPABILITIES", "WebOperations"]

#: The page renders any length and escapes everything itself (see docs/webchat.md).
WEB_CAPABILITIES = ChatCapabilities(
    max_message_length=100_000, streaming="send", min_update_interval=0.0
)


class WebOperations(MessageOperations):
    """Posts to web-chat sessions through ``engine()`` (None while the engine is not
    running: the router waits for it). ``sender`` is the message's ``from``."""

    def __init__(self, engine: Callable[[], Engine | None], *, sender: str = "hotplex") -> None:
        self._engine = engine
        self._sender = sender

    @classmethod
    def for_services(cls, services: Services, *, sender: str = "hotplex") -> WebOperations:
        """Operations that find the engine in ``PluginContext.services``."""
        return cls(lambda: services.find(ENGINE), sender=sender)

    def ready(self) -> bool:
        return self._engine() is not None

    @property
    def capabilities(self) -> ChatCapabilities:
        return WEB_CAPABILITIES

    @staticmethod
    def _key(address: AddressLike) -> str:
        parsed = Address.of(address)
        if parsed.platform != "web" or parsed.thread is not None:
            raise AddressError(
                f"address {address!r}: a web conversation is web:<key name>/<client session id>"
            )
        return str(parsed)

    async def post(
        self, address: AddressLike, text: str, *, sender: str | None = None
    ) -> AgentEvent:
        """Put a ``message`` event on the session of ``address``; the stamped event."""
        key = self._key(address)
        engine = self._engine()
        if engine is None:
            raise DeliveryError(f"{address}: the engine is not running")
        event = AgentEvent(type="message", data={"text": text, "from": sender or self._sender})
        owner = key.split(":", 1)[1].split("/", 1)[0]
        return await engine.post(key, event, address=key, user=owner)

    async def send(self, address: AddressLike, text: str) -> MessageRef:
        stamped = await self.post(address, text)
        return MessageRef(address=str(address), message_id=f"{stamped.session_id}:{stamped.seq}")

    async def update(self, ref: MessageRef, text: str) -> None:
        raise NotImplementedError("a web chat message cannot be edited (streaming is 'send')")

    async def delete(self, ref: MessageRef) -> None:
        raise NotImplementedError("a web chat message cannot be deleted")

    async def ask_approval(self, request: ApprovalRequest) -> MessageRef:
        """The session's own ``permission_request`` event is the card: nothing to post."""
        self._key(request.address or "")
        return MessageRef(address=request.address or "", message_id=request.permission_id)
