"""The gateway as a chat adapter of the dispatcher: a WebSocket or SSE ``execute`` (and
the web chat, which uses the WebSocket) goes through the same path as a chat platform's
message (:meth:`hotplex.chat.ChatBridge.handle`: inbound log, access, WAF, busy, chat
commands, engine), as platform ``web`` with the user ``key:<api key name>``.

Its "renderer" is the gateway's event relay: the dispatcher is asked not to render
(``render=False``) and the gateway streams the turn's AgentEvents to the client itself.
The dispatcher's replies (a refusal, "busy", a command's answer) come back in
:class:`~hotplex.chat.Handled` and the gateway answers with them (an error frame, or a
``message`` event), so these operations post nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from hotplex.chat.headless import HeadlessOperations
from hotplex.interfaces import ChatAdapter, MessageOperations
from hotplex.types import IncomingMessage

__all__ = ["GatewayAdapter"]


class GatewayAdapter(ChatAdapter):
    name = "gateway"
    platform = "web"

    def __init__(self) -> None:
        self._operations = HeadlessOperations()

    @property
    def operations(self) -> MessageOperations:
        return self._operations

    async def run(self, deliver: Callable[[IncomingMessage], Awaitable[None]]) -> None:
        await asyncio.Event().wait()  # never run: the gateway's handlers call the bridge
