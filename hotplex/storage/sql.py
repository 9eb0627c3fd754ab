"""``SqlStorage``: the built-in :class:`~hotplex.interfaces.Storage` on SQLAlchemy 2 async
(SQLite through aiosqlite, PostgreSQL through asyncpg).

Every method that writes runs in one transaction that is committed before it returns. On
SQLite writes of one process are serialised by an asyncio lock (SQLite has one writer at a
time anyway) and take the database's write lock at ``BEGIN IMMEDIATE``; other processes wait
up to ``busy_timeout``. docs/storage.md describes the tables and the guarantees.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

from sqlalchemy import (
    Delete,
    Table,
    and_,
    delete,
    inspect,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hotplex.errors import StorageError
from hotplex.events import AgentEvent, AuditEvent
from hotplex.interfaces import Storage
from hotplex.outbox import OutboxEntry
from hotplex.storage import leases, rows
from hotplex.storage.core_migrations import CORE_MIGRATIONS
from hotplex.storage.dialects import (
    AUTOCOMMIT_OPTION,
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_SYNCHRONOUS,
    SYNCHRONOUS_VALUES,
    WRITE_OPTION,
    build_engine,
    clean_text,
    dumps,
    parse_url,
    sqlite_path,
)
from hotplex.storage.fastpath import FastWriter
from hotplex.storage.migration import CORE_COMPONENT, Migration
from hotplex.storage.migrator import applied_versions, apply_migrations, ordered
from hotplex.storage.outbox import insert_entries
from hotplex.storage.schema import (
    CORE_TABLES,
    approvals,
    inbound,
    sessions,
    turns,
)
from hotplex.storage.schema import audit as audit_table
from hotplex.storage.schema import events as events_table
from hotplex.storage.schema import leases as leases_table
from hotplex.storage.schema import outbox as outbox_table
from hotplex.stored import ApprovalRecord, AuditRecord, QueuedTurn, SessionRecord
from hotplex.types import ApprovalRequest, IncomingMessage

__all__ = ["SqlStorage"]

log = logging.getLogger(__name__)

#: Rows deleted per transaction by :meth:`SqlStorage.prune` (keeps the write lock short).
PRUNE_CHUNK = 5000

Insert = PgInsert | SqliteInsert


class SqlStorage(Storage):
    """Storage in a SQL database. ``url`` is a SQLAlchemy async URL
    (``sqlite+aiosqlite:///path/hotplex.db`` or ``postgresql+asyncpg://user@host/db``).

    ``migrations`` are plugins' :class:`~hotplex.storage.Migration` records, applied with
    core's at :meth:`open`. ``synchronous`` (SQLite: ``FULL`` by default, or ``NORMAL``; also
    accepted as ``?synchronous=normal`` in the URL) trades durability against fsyncs, see
    docs/storage.md. ``busy_timeout`` is how long a SQLite writer waits for another process's
    write lock.
    """

    def __init__(
        self,
        url: str,
        *,
        migrations: Sequence[Migration] = (),
        synchronous: str | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._url, url_synchronous = parse_url(url)
        self._clock = clock  # the leases' time
        self.dialect = self._url.get_backend_name()
        self.synchronous = (synchronous or url_synchronous or DEFAULT_SYNCHRONOUS).upper()
        if self.synchronous not in SYNCHRONOUS_VALUES:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS_VALUES)}")
        self.busy_timeout = busy_timeout
        self._migrations = tuple(migrations)
        ordered([*CORE_MIGRATIONS, *self._migrations])  # a repeated version fails here
        self._engine: AsyncEngine | None = None
        self._write_lock = asyncio.Lock()
        self._fast: FastWriter | None = None

    def __repr__(self) -> str:
        return f"SqlStorage({self.url!r})"

    @property
    def url(self) -> str:
        """The URL with any password hidden."""
        return self._url.render_as_string(hide_password=True)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy engine (for plugins' own queries); StorageError before open."""
        if self._engine is None:
            raise StorageError(f"{self!r} is not open")
        return self._engine

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        if self._engine is not None:
            return
        try:
            engine = build_engine(
                self._url, synchronous=self.synchronous, busy_timeout=self.busy_timeout
            )
        except OSError as exc:
            raise StorageError(f"cannot open storage {self.url}: {exc}") from exc
        try:
            if self.is_sqlite:
                await self._enable_wal(engine)
            await apply_migrations(engine, [*CORE_MIGRATIONS, *self._migrations])
        except (SQLAlchemyError, OSError) as exc:
            await engine.dispose()
            raise StorageError(f"cannot open storage {self.url}: {exc}") from exc
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine
        path = sqlite_path(self._url) if self.is_sqlite else None
        if path is not None:
            fsync = self.synchronous in ("FULL", "EXTRA")
            self._fast = FastWriter(path, busy_timeout=self.busy_timeout, fsync=fsync)

    async def _enable_wal(self, engine: AsyncEngine) -> None:
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                async with engine.connect() as conn:
                    await conn.execution_options(**{AUTOCOMMIT_OPTION: True})
                    mode = str(await conn.scalar(text("PRAGMA journal_mode"))).lower()
                    if mode not in ("wal", "memory"):
                        mode = str(await conn.scalar(text("PRAGMA journal_mode = WAL"))).lower()
                    if mode not in ("wal", "memory"):
                        log.warning("SQLite refused WAL mode (journal_mode=%s)", mode)
                    return
            except OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def migrate(self, migrations: Sequence[Migration]) -> list[Migration]:
        """Apply more migrations after :meth:`open` (a plugin's, from its start-up
        resource); returns the ones applied now. Safe to call from several daemons."""
        engine = self.engine
        async with self._writer():
            try:
                return await apply_migrations(engine, [*CORE_MIGRATIONS, *migrations])
            except SQLAlchemyError as exc:
                raise StorageError(f"migrating {self.url} failed: {exc}") from exc

    async def close(self) -> None:
        fast, self._fast = self._fast, None
        if fast is not None:
            await fast.close()
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    async def ping(self) -> None:
        try:
            async with asyncio.timeout(5.0), self.read() as conn:
                await conn.execute(text("SELECT 1"))
        except TimeoutError:
            raise StorageError(f"{self.url} did not answer within 5s") from None

    async def integrity_check(self) -> list[str]:
        try:
            return await self._integrity_check()
        except StorageError as exc:  # e.g. "database disk image is malformed"
            return [f"the check itself failed: {exc}"]

    async def _integrity_check(self) -> list[str]:
        problems: list[str] = []
        async with self.read() as conn:
            if self.is_sqlite:
                result = await conn.exec_driver_sql("PRAGMA integrity_check")
                found = [str(row[0]) for row in result]
                if found != ["ok"]:
                    problems += [f"integrity_check: {line}" for line in found]
                result = await conn.exec_driver_sql("PRAGMA foreign_key_check")
                problems += [f"foreign_key_check: {tuple(row)}" for row in result]
            else:
                problems += await self._pg_sanity(conn)
            tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            problems += [f"table {name!r} is missing" for name in CORE_TABLES if name not in tables]
            versions = await applied_versions(conn)
            core = max((v for c, v in versions if c == CORE_COMPONENT), default=0)
            if core < len(CORE_MIGRATIONS):
                problems.append(f"core schema is at v{core}, expected v{len(CORE_MIGRATIONS)}")
        return problems

    async def _pg_sanity(self, conn: AsyncConnection) -> list[str]:
        problems: list[str] = []
        await conn.execute(text("SELECT 1"))
        invalid = await conn.execute(
            text(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE NOT i.indisvalid AND n.nspname = current_schema()"
            )
        )
        problems += [f"index {row[0]!r} is invalid" for row in invalid]
        failures = await conn.scalar(
            text(
                "SELECT checksum_failures FROM pg_stat_database WHERE datname = current_database()"
            )
        )
        if failures:
            problems.append(f"{failures} data checksum failures in this database")
        return problems

    # -- transactions (also for plugins' own tables) -----------------------------------

    def _writer(self) -> AbstractAsyncContextManager[Any]:
        return self._write_lock if self.is_sqlite else nullcontext()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed when the block ends without an error (SQLite:
        ``BEGIN IMMEDIATE``, one writer of this process at a time)."""
        engine = self.engine
        async with self._writer():
            try:
                async with engine.connect() as conn:
                    await conn.execution_options(**{WRITE_OPTION: True})
                    async with conn.begin():
                        yield conn
            except (SQLAlchemyError, OSError) as exc:
                raise StorageError(f"storage write failed: {exc}") from exc

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction (a consistent snapshot on SQLite WAL)."""
        engine = self.engine
        try:
            async with engine.connect() as conn, conn.begin():
                yield conn
        except (SQLAlchemyError, OSError) as exc:
            raise StorageError(f"storage read failed: {exc}") from exc

    def _insert(self, table: Table) -> Insert:
        return sqlite_insert(table) if self.is_sqlite else pg_insert(table)

    # -- events and audit --------------------------------------------------------------

    async def append_batch(
        self,
        events: Sequence[AgentEvent],
        audit: Sequence[AuditEvent],
        *,
        outbox: Sequence[OutboxEntry] = (),
    ) -> None:
        if not events and not audit and not outbox:
            return
        now = time.time()
        async with self.write() as conn:
            await self._insert_events(conn, events, now)
            if audit:
                await conn.execute(audit_table.insert(), [rows.audit_row(e) for e in audit])
            await insert_entries(conn, self._insert(outbox_table), outbox)

    async def _insert_events(
        self, conn: AsyncConnection, batch: Sequence[AgentEvent], now: float
    ) -> None:
        if not batch:
            return
        stmt = self._insert(events_table).on_conflict_do_nothing(
            index_elements=["session_id", "seq"]
        )
        await conn.execute(stmt, [rows.event_row(e, now) for e in batch])

    async def read_events(
        self, session_id: str, *, since_seq: int = 0, limit: int = 1000
    ) -> list[AgentEvent]:
        query = (
            select(events_table)
            .where(events_table.c.session_id == session_id, events_table.c.seq > since_seq)
            .order_by(events_table.c.seq)
            .limit(limit)
        )
        async with self.read() as conn:
            result = await conn.execute(query)
            return [rows.event_from_row(row) for row in result.mappings()]

    async def read_audit(
        self,
        *,
        types: Collection[str] | None = None,
        session_id: str | None = None,
        since: float | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditRecord]:
        query = select(audit_table).order_by(audit_table.c.id.desc()).limit(limit)
        if types is not None:
            query = query.where(audit_table.c.type.in_(list(types)))
        if session_id is not None:
            query = query.where(audit_table.c.session_id == session_id)
        if since is not None:
            query = query.where(audit_table.c.ts >= since)
        if before_id is not None:
            query = query.where(audit_table.c.id < before_id)
        async with self.read() as conn:
            result = await conn.execute(query)
            return [rows.audit_from_row(row) for row in result.mappings()]

    async def prune(self, older_than: float) -> int:
        def old_events() -> Delete:
            keys = select(events_table.c.session_id, events_table.c.seq).where(
                events_table.c.ts < older_than
            )
            return delete(events_table).where(
                tuple_(events_table.c.session_id, events_table.c.seq).in_(keys.limit(PRUNE_CHUNK))
            )

        def old_audit() -> Delete:
            ids = select(audit_table.c.id).where(audit_table.c.ts < older_than).limit(PRUNE_CHUNK)
            return delete(audit_table).where(audit_table.c.id.in_(ids))

        def old_turns() -> Delete:
            ids = (
                select(turns.c.id)
                .where(turns.c.state == "finished", turns.c.finished_at < older_than)
                .limit(PRUNE_CHUNK)
            )
            return delete(turns).where(turns.c.id.in_(ids))

        def old_inbound() -> Delete:
            ids = (
                select(inbound.c.id)
                .where(inbound.c.state == "done", inbound.c.done_at < older_than)
                .limit(PRUNE_CHUNK)
            )
            return delete(inbound).where(inbound.c.id.in_(ids))

        def old_outbox() -> Delete:
            ids = (
                select(outbox_table.c.id)
                .where(outbox_table.c.created_at < older_than)
                .limit(PRUNE_CHUNK)
            )
            return delete(outbox_table).where(outbox_table.c.id.in_(ids))

        total = 0
        for make in (old_events, old_audit, old_turns, old_inbound, old_outbox):
            total += await self._delete_in_chunks(make)
        return total

    async def _delete_in_chunks(self, make: Callable[[], Delete]) -> int:
        total = 0
        while True:
            async with self.write() as conn:
                count = (await conn.execute(make())).rowcount
            total += count
            if count < PRUNE_CHUNK:
                return total

    # -- sessions ----------------------------------------------------------------------

    async def save_session(self, record: SessionRecord) -> None:
        async with self.write() as conn:
            await conn.execute(self._save_session_stmt(record))

    def _save_session_stmt(self, record: SessionRecord) -> Any:
        row = rows.session_row(record)
        stmt = self._insert(sessions).values(**row)
        keep = {"session_id", "created_at"}
        return stmt.on_conflict_do_update(
            index_elements=["session_id"],
            set_={name: stmt.excluded[name] for name in row if name not in keep},
        )

    async def get_session(self, session_id: str) -> SessionRecord | None:
        async with self.read() as conn:
            result = await conn.execute(select(sessions).where(sessions.c.session_id == session_id))
            row = result.mappings().first()
        return None if row is None else rows.session_from_row(row)

    async def load_sessions(self) -> list[SessionRecord]:
        query = select(sessions).order_by(sessions.c.created_at, sessions.c.session_id)
        async with self.read() as conn:
            result = await conn.execute(query)
            return [rows.session_from_row(row) for row in result.mappings()]

    # -- leases (hotplex.storage.leases) -----------------------------------------------

    async def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        leases.check_lease_args(name, holder, ttl)
        async with self.write() as conn:
            return await leases.acquire(
                conn, self._insert(leases_table), name, holder, ttl, self._clock()
            )

    async def renew_lease(self, name: str, holder: str, ttl: float) -> bool:
        leases.check_lease_args(name, holder, ttl)
        async with self.write() as conn:
            return await leases.renew(conn, name, holder, ttl, self._clock())

    async def release_lease(self, name: str, holder: str) -> bool:
        leases.check_lease_args(name, holder)
        async with self.write() as conn:
            return await leases.release(conn, name, holder)

    # -- queued turns ------------------------------------------------------------------

    async def accept_turn(
        self,
        session_id: str,
        turn_id: str,
        prompt: str,
        *,
        request_id: str | None = None,
        user: str | None = None,
        inbound: IncomingMessage | None = None,
        started: bool = False,
    ) -> None:
        """The turn queued (or ``started``) and its inbound message done (inserted as done
        if it was never recorded), in one transaction. On a SQLite file it is in the WAL
        when this returns, and on disk once :meth:`synced` says so (see
        :mod:`hotplex.storage.fastpath`)."""
        now = time.time()
        if self._fast is not None:
            row = (turn_id, session_id, clean_text(prompt, nul=False), request_id, user)
            state = ("started", now, now) if started else ("queued", now, None)
            async with self._write_lock:
                await self._fast.run(lambda conn: _accept_sqlite(conn, (*row, *state), inbound))
            return
        stmt = (
            self._insert(turns)
            .values(
                turn_id=turn_id,
                session_id=session_id,
                prompt=prompt,
                request_id=request_id,
                user=user,
                state="started" if started else "queued",
                created_at=now,
                started_at=now if started else None,
            )
            .on_conflict_do_nothing(index_elements=["turn_id"])
        )
        async with self.write() as conn:
            await conn.execute(stmt)
            if inbound is not None:  # one transaction: never both pending after a crash
                await self._finish_inbound(conn, inbound)

    def synced(self) -> Awaitable[None]:
        """Done once every turn accepted so far is on disk (at once, except after
        :meth:`accept_turn` on a SQLite file with ``synchronous`` FULL)."""
        if self._fast is not None:
            return self._fast.synced()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def start_turn(self, turn_id: str) -> None:
        stmt = (
            update(turns)
            .where(turns.c.turn_id == turn_id, turns.c.state == "queued")
            .values(state="started", started_at=time.time())
        )
        async with self.write() as conn:
            await conn.execute(stmt)

    async def end_turn(
        self, turn_id: str, status: str, session: SessionRecord | None = None
    ) -> None:
        """The turn finished (and the session stored), in one transaction."""
        async with self.write() as conn:
            await conn.execute(self._finish_turn_stmt(turn_id, status))
            if session is not None:
                await conn.execute(self._save_session_stmt(session))

    @staticmethod
    def _finish_turn_stmt(turn_id: str, status: str) -> Any:
        return (
            update(turns)
            .where(turns.c.turn_id == turn_id, turns.c.state != "finished")
            .values(state="finished", status=status, finished_at=time.time())
        )

    async def pending_turns(self, session_id: str | None = None) -> list[QueuedTurn]:
        query = select(turns).where(turns.c.state.in_(["queued", "started"])).order_by(turns.c.id)
        if session_id is not None:
            query = query.where(turns.c.session_id == session_id)
        async with self.read() as conn:
            result = await conn.execute(query)
            return [rows.turn_from_row(row) for row in result.mappings()]

    # -- approvals ---------------------------------------------------------------------

    async def save_approval(
        self,
        request: ApprovalRequest,
        decision: str | None = None,
        by: str | None = None,
        scope: str | None = None,
    ) -> None:
        decided = {
            "decision": decision,
            "decided_by": by if decision is not None else None,
            "scope": scope if decision is not None else None,
            "decided_at": time.time() if decision is not None else None,
        }
        stmt = self._insert(approvals).values(**rows.approval_row(request), **decided)
        if decision is None:
            stmt = stmt.on_conflict_do_nothing(index_elements=["permission_id"])
        else:
            stmt = stmt.on_conflict_do_update(
                index_elements=["permission_id"],
                set_={name: stmt.excluded[name] for name in decided},
                where=approvals.c.decision.is_(None),
            )
        async with self.write() as conn:
            await conn.execute(stmt)

    async def get_approval(self, permission_id: str) -> ApprovalRecord | None:
        query = select(approvals).where(approvals.c.permission_id == permission_id)
        async with self.read() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else rows.approval_from_row(row)

    # -- inbound messages --------------------------------------------------------------

    async def record_inbound(self, message: IncomingMessage) -> bool:
        stmt = self._inbound_insert(message, "received").returning(inbound.c.id)
        async with self.write() as conn:
            inserted = (await conn.execute(stmt)).first()
        return inserted is not None

    def _inbound_insert(self, message: IncomingMessage, state: str) -> Insert:
        done = state == "done"
        return (
            self._insert(inbound)
            .values(
                platform=message.platform,
                event_id=message.event_id,
                message_key=message.message_key,
                address=message.address,
                payload=rows.inbound_payload(message),
                state=state,
                received_at=message.received_at,
                done_at=time.time() if done else None,
            )
            .on_conflict_do_nothing()
        )

    async def finish_inbound(self, message: IncomingMessage) -> None:
        async with self.write() as conn:
            await self._finish_inbound(conn, message)

    async def _finish_inbound(self, conn: AsyncConnection, message: IncomingMessage) -> None:
        """Mark the message done; a message never recorded (one without an event id or a
        message key, which cannot be de-duplicated: see hotplex.inbound) is inserted as
        done, so every message is stored once."""
        if (await conn.execute(self._finish_inbound_stmt(message))).rowcount:
            return
        await conn.execute(self._inbound_insert(message, "done"))

    @staticmethod
    def _finish_inbound_stmt(message: IncomingMessage) -> Any:
        same = [inbound.c.platform == message.platform, inbound.c.state == "received"]
        ids = []
        if message.event_id is not None:
            ids.append(inbound.c.event_id == message.event_id)
        if message.message_key is not None:
            ids.append(inbound.c.message_key == message.message_key)
        if ids:
            same.append(or_(*ids))
        else:  # no platform identity: the very message recorded before
            same.append(
                and_(
                    inbound.c.event_id.is_(None),
                    inbound.c.message_key.is_(None),
                    inbound.c.address == message.address,
                    inbound.c.received_at == message.received_at,
                )
            )
        return update(inbound).where(*same).values(state="done", done_at=time.time())

    async def pending_inbound(self) -> list[IncomingMessage]:
        query = select(inbound.c.payload).where(inbound.c.state == "received")
        async with self.read() as conn:
            result = await conn.execute(query.order_by(inbound.c.id))
            return [rows.message_from_payload(payload) for payload in result.scalars()]


_ACCEPT_TURN = (
    "INSERT INTO turns (turn_id, session_id, prompt, request_id, user, state, created_at, "
    "started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (turn_id) DO NOTHING"
)
_INSERT_DONE_INBOUND = (
    "INSERT INTO inbound (platform, event_id, message_key, address, payload, state, "
    "received_at, done_at) VALUES (?, ?, ?, ?, ?, 'done', ?, ?) ON CONFLICT DO NOTHING"
)


def _accept_sqlite(
    conn: sqlite3.Connection, turn: tuple[Any, ...], message: IncomingMessage | None
) -> None:
    """:meth:`SqlStorage.accept_turn`'s statements on a plain ``sqlite3`` connection (the
    same rows as the SQLAlchemy path: tests/storage compares them)."""
    conn.execute(_ACCEPT_TURN, turn)
    if message is None:
        return
    now = time.time()
    where = "platform = ? AND state = 'received'"
    params: list[Any] = [now, message.platform]
    ids = []
    if message.event_id is not None:
        ids.append("event_id = ?")
        params.append(message.event_id)
    if message.message_key is not None:
        ids.append("message_key = ?")
        params.append(message.message_key)
    if ids:
        where += f" AND ({' OR '.join(ids)})"
    else:  # no platform identity: the very message recorded before
        where += " AND event_id IS NULL AND message_key IS NULL AND address = ? AND received_at = ?"
        params += [message.address, message.received_at]
    if conn.execute(
        f"UPDATE inbound SET state = 'done', done_at = ? WHERE {where}", params
    ).rowcount:
        return
    payload = dumps(rows.inbound_payload(message))
    conn.execute(
        _INSERT_DONE_INBOUND,
        (
            message.platform,
            message.event_id,
            message.message_key,
            message.address,
            payload,
            message.received_at,
            now,
        ),
    )
