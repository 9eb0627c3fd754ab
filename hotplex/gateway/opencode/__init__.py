"""An OpenCode-compatible HTTP/SSE API over HotPlex's sessions (``/opencode/...``), for
clients built on the official ``@opencode-ai/sdk``. See docs/opencode-api.md."""

from __future__ import annotations

from hotplex.gateway.opencode.hub import Hub
from hotplex.gateway.opencode.routes import HUB_KEY, PREFIX, add_opencode_routes

__all__ = ["HUB_KEY", "PREFIX", "Hub", "add_opencode_routes"]
