"""The :class:`Migration` record: one versioned schema change of core or of a plugin.

No SQLAlchemy import at run time, so a plugin module can declare its migrations cheaply.
:mod:`hotplex.storage.migrator` applies them; docs/storage.md shows a plugin's example.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ["CORE_COMPONENT", "Migration"]

#: The component name of HotPlex's own migrations (applied before every plugin's).
CORE_COMPONENT = "core"

_COMPONENT = re.compile(r"[a-z][a-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema change. ``upgrade(conn)`` runs inside the transaction that records it in
    ``hotplex_migrations``: either both happen or neither does.

    ``component`` names who owns the tables (``core``, or the plugin's name); ``version``
    counts from 1 per component. A database applies each (component, version) once, core's
    first, then the plugins' in (component, version) order. ``upgrade`` gets a synchronous
    :class:`sqlalchemy.Connection` and must not commit.
    """

    component: str
    version: int
    description: str
    upgrade: Callable[[Connection], None]

    def __post_init__(self) -> None:
        if not _COMPONENT.fullmatch(self.component):
            raise ValueError(
                f"migration component {self.component!r} must be lowercase letters, digits "
                "and _.- (starting with a letter)"
            )
        if isinstance(self.version, bool) or not isinstance(self.version, int):
            raise ValueError(f"migration version must be an int, not {self.version!r}")
        if self.version < 1:
            raise ValueError(f"migration version must be >= 1, not {self.version}")

    @property
    def id(self) -> tuple[str, int]:
        return (self.component, self.version)

    def __str__(self) -> str:
        return f"{self.component} v{self.version} ({self.description})"
