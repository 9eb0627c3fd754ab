"""The outbox on ``SqlStorage`` (:class:`hotplex.outbox.Outbox` over core's ``outbox`` table).

- Rows are written by :meth:`SqlStorage.append_batch` in the transaction that stores their
  events (:func:`insert_entries`); ``(consumer, event_id)`` is unique, so a batch written
  twice (a retry after a lost acknowledgement) adds each row once.
- A claim is one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING``:
  on PostgreSQL two workers never claim one row; on SQLite writers run one at a time anyway.
  The claim moves ``next_attempt_at`` to the end of the lease, so a row whose worker died
  is due again when the lease ends, with the same event id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert

from hotplex.outbox import Outbox, OutboxEntry, OutboxRow
from hotplex.storage.schema import outbox

if TYPE_CHECKING:
    from hotplex.storage.sql import SqlStorage

__all__ = ["SqlOutbox", "insert_entries"]


async def insert_entries(
    conn: AsyncConnection, insert: Insert, entries: Sequence[OutboxEntry]
) -> None:
    """Write ``entries`` as pending rows, due at once (an existing one is kept)."""
    if not entries:
        return
    stmt: Any = insert
    stmt = stmt.on_conflict_do_nothing(index_elements=["consumer", "event_id"])
    await conn.execute(
        stmt,
        [
            {
                "consumer": e.consumer,
                "event_id": e.event_id,
                "type": e.type,
                "payload": e.payload,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": e.created_at,
                "last_error": None,
                "created_at": e.created_at,
                "updated_at": e.created_at,
            }
            for e in entries
        ],
    )


def _row(raw: Any) -> OutboxRow:
    return OutboxRow(
        id=raw["id"],
        consumer=raw["consumer"],
        event_id=raw["event_id"],
        type=raw["type"],
        payload=dict(raw["payload"]),
        state=raw["state"],
        attempts=raw["attempts"],
        next_attempt_at=raw["next_attempt_at"],
        last_error=raw["last_error"],
        created_at=raw["created_at"],
        updated_at=raw["updated_at"],
    )


class SqlOutbox(Outbox):
    """The outbox in ``storage``'s database. ``clock`` gives Unix time (tests move it)."""

    def __init__(self, storage: SqlStorage, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.storage = storage
        self.clock = clock

    async def claim(
        self, consumer: str, *, limit: int = 10, lease: float = 60.0
    ) -> list[OutboxRow]:
        if limit < 1 or lease <= 0:
            raise ValueError("claim needs limit >= 1 and lease > 0")
        now = self.clock()
        due = (
            select(outbox.c.id)
            .where(
                outbox.c.consumer == consumer,
                outbox.c.state == "pending",
                outbox.c.next_attempt_at <= now,
            )
            .order_by(outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            update(outbox)
            .where(outbox.c.id.in_(due.scalar_subquery()))
            .values(
                attempts=outbox.c.attempts + 1,
                next_attempt_at=now + lease,
                updated_at=now,
            )
            .returning(*outbox.c)
        )
        async with self.storage.write() as conn:
            result = await conn.execute(stmt)
            rows = [_row(r) for r in result.mappings()]
        return sorted(rows, key=lambda r: r.id)

    async def ack(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        async with self.storage.write() as conn:
            await conn.execute(delete(outbox).where(outbox.c.id.in_(list(ids))))

    async def retry(self, row_id: int, at: float, error: str) -> None:
        async with self.storage.write() as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == row_id, outbox.c.state == "pending")
                .values(next_attempt_at=at, last_error=error, updated_at=self.clock())
            )

    async def dead(self, row_ids: Sequence[int], error: str) -> None:
        if not row_ids:
            return
        async with self.storage.write() as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(list(row_ids)))
                .values(state="dead", last_error=error, updated_at=self.clock())
            )

    async def give_up(self, consumer: str, error: str) -> int:
        async with self.storage.write() as conn:
            result = await conn.execute(
                update(outbox)
                .where(outbox.c.consumer == consumer, outbox.c.state == "pending")
                .values(state="dead", last_error=error, updated_at=self.clock())
                .returning(outbox.c.id)
            )
            return len(result.all())

    async def dead_letters(
        self, consumer: str | None = None, *, limit: int = 100
    ) -> list[OutboxRow]:
        query = select(outbox).where(outbox.c.state == "dead").order_by(outbox.c.id).limit(limit)
        if consumer is not None:
            query = query.where(outbox.c.consumer == consumer)
        async with self.storage.read() as conn:
            result = await conn.execute(query)
            return [_row(r) for r in result.mappings()]

    async def redeliver(self, consumer: str, ids: Sequence[int] | None = None) -> int:
        now = self.clock()
        stmt = update(outbox).where(outbox.c.consumer == consumer, outbox.c.state == "dead")
        if ids is not None:
            stmt = stmt.where(outbox.c.id.in_(list(ids)))
        stmt = stmt.values(
            state="pending", attempts=0, next_attempt_at=now, updated_at=now
        ).returning(outbox.c.id)
        async with self.storage.write() as conn:
            count = len((await conn.execute(stmt)).all())
        if count:
            self.notify([consumer])
        return count

    async def counts(self) -> dict[str, dict[str, Any]]:
        query = select(
            outbox.c.consumer,
            outbox.c.state,
            func.count(),
            func.min(outbox.c.created_at),
        ).group_by(outbox.c.consumer, outbox.c.state)
        out: dict[str, dict[str, Any]] = {}
        async with self.storage.read() as conn:
            for consumer, state, count, oldest in (await conn.execute(query)).all():
                entry = out.setdefault(consumer, {"pending": 0, "dead": 0, "oldest_pending": None})
                entry[state] = count
                if state == "pending":
                    entry["oldest_pending"] = oldest
        return out
