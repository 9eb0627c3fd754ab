"""The gateway: one aiohttp application on one port."""

from __future__ import annotations

from hotplex.gateway.app import RUNTIME_KEY, build_app

__all__ = ["RUNTIME_KEY", "build_app"]
