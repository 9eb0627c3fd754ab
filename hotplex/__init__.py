"""HotPlex: coding-agent CLIs as long-lived, safe chat services.

The package root re-exports the public surface a plugin author needs and imports no
optional SDK. ``hotplex.open`` (HotPlex inside a Python program, see :mod:`hotplex.embed`)
is imported on first use, so importing a plugin module does not start the engine's imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hotplex.address import Address, session_id_for, session_key
from hotplex.errors import HotplexError, UserFacingError
from hotplex.events import AgentEvent, AuditEvent, agent_event
from hotplex.hookspecs import hookimpl

if TYPE_CHECKING:
    from hotplex.embed import HotPlex, Reply
    from hotplex.embed import open as open

__version__ = "0.1.0"

__all__ = [
    "Address",
    "AgentEvent",
    "AuditEvent",
    "HotPlex",
    "HotplexError",
    "Reply",
    "UserFacingError",
    "__version__",
    "agent_event",
    "hookimpl",
    "session_id_for",
    "session_key",
]


# ``open`` is left out of ``__all__``: ``from hotplex import *`` must not shadow the
# built-in; it is ``hotplex.open``.


def __getattr__(name: str) -> Any:
    if name in ("HotPlex", "Reply", "open"):
        from hotplex import embed

        return getattr(embed, name)
    raise AttributeError(f"module 'hotplex' has no attribute {name!r}")
