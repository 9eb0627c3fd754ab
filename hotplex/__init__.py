"""HotPlex: coding-agent CLIs as long-lived, safe chat services.

The package root re-exports the public surface a plugin author needs and imports no
optional SDK.
"""

from __future__ import annotations

from hotplex.address import Address, session_id_for, session_key
from hotplex.errors import HotplexError, UserFacingError
from hotplex.events import AgentEvent, AuditEvent, agent_event
from hotplex.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "Address",
    "AgentEvent",
    "AuditEvent",
    "HotplexError",
    "UserFacingError",
    "__version__",
    "agent_event",
    "hookimpl",
    "session_id_for",
    "session_key",
]
