"""Typed keys of the core services in ``PluginContext.services``.

``ENGINE`` lives in :mod:`hotplex.engine`, ``RUNTIME`` in :mod:`hotplex.runtime` and
``TEMPLATES`` in :mod:`hotplex.templating`; this module holds the ones without a home of
their own.
"""

from __future__ import annotations

from hotplex.context import ServiceKey
from hotplex.interfaces import Storage

__all__ = ["STORAGE"]

#: The opened storage backend (set by core's ``storage`` start-up resource).
STORAGE: ServiceKey[Storage] = ServiceKey("storage", Storage)  # type: ignore[type-abstract]
