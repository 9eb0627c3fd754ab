"""Durable storage: the SQLAlchemy backend, its migrations and the storage sink.

Importing this package is cheap (SQLAlchemy loads only when a backend is built)::

    from hotplex.storage import Migration, SessionRecord
    from hotplex.storage.sql import SqlStorage     # loads SQLAlchemy

See docs/storage.md for the tables, the guarantees and how plugins add their own tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hotplex.storage.migration import Migration
from hotplex.stored import ApprovalRecord, AuditRecord, QueuedTurn, SessionRecord

if TYPE_CHECKING:
    from hotplex.storage.sink import StorageSink
    from hotplex.storage.sql import SqlStorage

__all__ = [
    "ApprovalRecord",
    "AuditRecord",
    "Migration",
    "QueuedTurn",
    "SessionRecord",
    "SqlStorage",
    "StorageSink",
]


def __getattr__(name: str) -> Any:
    if name == "SqlStorage":
        from hotplex.storage.sql import SqlStorage

        return SqlStorage
    if name == "StorageSink":
        from hotplex.storage.sink import StorageSink

        return StorageSink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
