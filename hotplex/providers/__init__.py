"""Built-in agent providers."""

from __future__ import annotations
