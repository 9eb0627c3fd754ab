"""Bindings: two conversations that show each other's messages (docs/relay.md#bindings).

Stored in the plugin's own table ``relay_bindings`` (migration ``relay`` v1,
:func:`create_v1`; SQLite and PostgreSQL alike), one row per pair in a canonical order
(``left < right``), and kept in memory for the mirror, which looks them up on every
message. Without SQL storage they live in memory only.

A side is a conversation of this instance (``slack:T01/C02``) or one of a relay peer
(``b@feishu:tk/oc_1``): what is said here is then posted there through the peer's
``/relay/v1/mirror``, which the peer accepts only for a binding it holds too (its side
``a@slack:T01/C02``), so each bot consents to what is posted into its conversations.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Connection, Float, MetaData, String, Table, delete, select

from hotplex import Address, UserFacingError
from hotplex.errors import AddressError

if TYPE_CHECKING:
    from hotplex.storage.sql import SqlStorage

__all__ = ["Binding", "BindingStore", "create_v1", "remote"]

_md = MetaData()
#: The table as this version of the plugin uses it (migrations define their own copy).
BINDINGS = Table(
    "relay_bindings",
    _md,
    Column("left_address", String(512), primary_key=True),
    Column("right_address", String(512), primary_key=True),
    Column("created_by", String(256), nullable=True),
    Column("created_at", Float, nullable=False),
)


def create_v1(conn: Connection) -> None:
    """Migration ``relay`` v1 (frozen: later changes are new versions)."""
    md = MetaData()
    Table(
        "relay_bindings",
        md,
        Column("left_address", String(512), primary_key=True),
        Column("right_address", String(512), primary_key=True),
        Column("created_by", String(256), nullable=True),
        Column("created_at", Float, nullable=False),
    ).create(conn)


@dataclass(frozen=True, slots=True)
class Binding:
    left: str
    right: str
    created_by: str | None
    created_at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "left": self.left,
            "right": self.right,
            "created_by": self.created_by,
            "created_at": self.created_at,
        }


def remote(side: str) -> tuple[str, str] | None:
    """``(peer, address)`` of a binding's side on another bot (``b@slack:T01/C02``), or
    None for a conversation of this instance."""
    head, at, rest = side.partition("@")
    if not at or ":" in head:
        return None
    return head, rest


def _side(text: str, peers: Collection[str] | None) -> str:
    """A binding's side, checked: a conversation address here, or ``<peer>@<address>``
    there (the peer one of ``peers`` when they are given)."""
    found = remote(text.strip())
    try:
        if found is None:
            return str(Address.parse(text.strip()))
        peer, address = found
        if peers is not None and peer not in peers:
            known = ", ".join(sorted(peers)) or "none"
            raise UserFacingError(f"{text}: no relay peer named {peer!r} (configured: {known})")
        return f"{peer}@{Address.parse(address)}"
    except AddressError as exc:
        raise UserFacingError(f"not a conversation address: {exc}") from None


def _pair(a: str, b: str, peers: Collection[str] | None = None) -> tuple[str, str]:
    left, right = _side(a, peers), _side(b, peers)
    if left == right:
        raise UserFacingError("a conversation cannot be bound to itself")
    if remote(left) and remote(right):
        raise UserFacingError("one side of a binding must be a conversation of this bot")
    return (left, right) if left < right else (right, left)


class BindingStore:
    """The bindings, in memory and (with SQL storage) in ``relay_bindings``."""

    def __init__(self, storage: SqlStorage | None) -> None:
        self._storage = storage
        self._bindings: dict[tuple[str, str], Binding] = {}

    async def load(self) -> None:
        if self._storage is None:
            return
        async with self._storage.read() as conn:
            rows = (await conn.execute(select(BINDINGS))).all()
        self._bindings = {
            (r.left_address, r.right_address): Binding(
                r.left_address, r.right_address, r.created_by, r.created_at
            )
            for r in rows
        }

    def all(self) -> list[Binding]:
        return sorted(self._bindings.values(), key=lambda b: (b.left, b.right))

    def partners(self, address: str) -> list[str]:
        """The conversations bound to ``address``."""
        found = []
        for left, right in self._bindings:
            if left == address:
                found.append(right)
            elif right == address:
                found.append(left)
        return found

    def bound(self, a: str, b: str) -> bool:
        """Whether ``a`` and ``b`` (already canonical) are bound."""
        return ((a, b) if a < b else (b, a)) in self._bindings

    async def bind(
        self, a: str, b: str, *, by: str | None = None, peers: Collection[str] | None = None
    ) -> Binding:
        """Bind two sides (``peers``: the relay peers a remote side may name)."""
        left, right = _pair(a, b, peers)
        existing = self._bindings.get((left, right))
        if existing is not None:
            return existing
        binding = Binding(left, right, by, time.time())
        if self._storage is not None:
            async with self._storage.write() as conn:
                await conn.execute(
                    BINDINGS.insert().values(
                        left_address=left, right_address=right,
                        created_by=by, created_at=binding.created_at,
                    )
                )  # fmt: skip
        self._bindings[(left, right)] = binding
        return binding

    async def unbind(self, a: str, b: str) -> bool:
        left, right = _pair(a, b)
        if (left, right) not in self._bindings:
            return False
        if self._storage is not None:
            async with self._storage.write() as conn:
                await conn.execute(
                    delete(BINDINGS).where(
                        BINDINGS.c.left_address == left, BINDINGS.c.right_address == right
                    )
                )
        del self._bindings[(left, right)]
        return True
