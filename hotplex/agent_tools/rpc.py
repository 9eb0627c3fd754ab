"""JSON-RPC errors and MCP error results, shared by the bridge and its transports."""

from __future__ import annotations

from typing import Any

__all__ = ["RpcError", "error_result"]


class RpcError(Exception):
    """A JSON-RPC error: ``code`` and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def error_result(message: str) -> dict[str, Any]:
    """A tool result the agent sees as a failure (``isError``)."""
    return {"content": [{"type": "text", "text": message}], "isError": True}
