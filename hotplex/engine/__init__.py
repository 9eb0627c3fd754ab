"""The engine: a pool of hot agent processes, one per conversation."""

from __future__ import annotations
