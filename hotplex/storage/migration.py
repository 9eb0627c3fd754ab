"""The :class:`Migration` record: one versioned schema change of core or of a plugin.

The record lives in :mod:`hotplex.records` (a plugin returns its migrations from the
``hotplex_register_migrations`` hook); it is re-exported here.
:mod:`hotplex.storage.migrator` applies them; docs/storage.md shows a plugin's example.
"""

from __future__ import annotations

from hotplex.records import Migration

__all__ = ["CORE_COMPONENT", "Migration"]

#: The component name of HotPlex's own migrations (applied before every plugin's).
CORE_COMPONENT = "core"
