"""The engine: a pool of hot agent processes, one per conversation."""

from __future__ import annotations

from hotplex.context import ServiceKey
from hotplex.engine.engine import Engine
from hotplex.engine.session import SessionInfo, Subscription, Turn

#: The running engine, in ``PluginContext.services``.
ENGINE = ServiceKey("engine", Engine)

__all__ = ["ENGINE", "Engine", "SessionInfo", "Subscription", "Turn"]
