"""Core's chat layer: the dispatcher and rendering a turn's events as messages within a
platform's limits.

:class:`ChatBridge` (service :data:`CHAT_BRIDGE`) runs an adapter's message through the
middleware chain, chat commands and the engine, and renders the answer.

:class:`Renderer` turns one turn's ``AgentEvent`` stream into ``MessageOperations`` calls
within the :class:`~hotplex.types.ChatCapabilities` the adapter declares; :func:`split_text`
splits a long answer; :class:`Pacer` keeps writes apart; the length functions measure text
as platforms count it. :class:`Router` (service ``DELIVERY``) delivers text, files and
approval cards to any conversation address through the adapter that owns its platform.
:class:`ChatApprovals` (service :data:`CHAT_APPROVALS`) shows approval requests as cards,
decides a button press (through ``ChatBridge.decide``) and shows every outcome;
:class:`AccessMiddleware` (order 200) applies each platform's DM and group policies.
:class:`HeadlessOperations` post nothing, for a platform whose caller takes its turns'
events itself (``handle(..., render=False)``).
"""

from __future__ import annotations

from hotplex.chat.access import AccessMiddleware
from hotplex.chat.approvals import CHAT_APPROVALS, ChatApprovals
from hotplex.chat.dispatch import ChatBridge, Handled
from hotplex.chat.headless import HeadlessOperations
from hotplex.chat.measure import codepoint_length, is_boundary, utf8_length, utf16_length
from hotplex.chat.pacer import Budget, Pacer
from hotplex.chat.render import Rendered, Renderer
from hotplex.chat.router import DELIVERY, Endpoint, Router
from hotplex.chat.split import Part, split_text
from hotplex.chat.status import FOOTER_TEMPLATE, TurnStatus
from hotplex.context import ServiceKey

__all__ = [
    "CHAT_APPROVALS",
    "CHAT_BRIDGE",
    "DELIVERY",
    "FOOTER_TEMPLATE",
    "AccessMiddleware",
    "Budget",
    "ChatApprovals",
    "ChatBridge",
    "Endpoint",
    "Handled",
    "HeadlessOperations",
    "Pacer",
    "Part",
    "Rendered",
    "Renderer",
    "Router",
    "TurnStatus",
    "codepoint_length",
    "is_boundary",
    "split_text",
    "utf8_length",
    "utf16_length",
]

CHAT_BRIDGE = ServiceKey("chat_bridge", ChatBridge)
"""The running :class:`ChatBridge` (set by core's ``chat`` start-up resource)."""
