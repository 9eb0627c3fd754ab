"""The SQLite turn-start path: a turn's record in the WAL before its prompt reaches the
agent, its fsync alongside the agent's start.

Accepting a turn is the one write between a client's prompt and the agent. Through
SQLAlchemy and aiosqlite it costs a thread hop per statement plus an fsync of the WAL at
commit (``synchronous=FULL``): ~0.2 ms on a quiet disk, 4 ms and more on a busy one. This
writer does the whole transaction in one hop on its own ``sqlite3`` connection, whose
commits append to the WAL without an fsync (``synchronous=NORMAL``), and then fsyncs the
WAL file in another thread while the engine hands the prompt to the agent:

- once :meth:`FastWriter.run` returns, the transaction is in the WAL (the OS page cache):
  a crash of the daemon (SIGKILL included) after that keeps it;
- once the future of :meth:`FastWriter.synced` is done, it is on disk: a power loss keeps
  it too. The engine publishes nothing of the turn (to clients or sinks) before that, so
  whatever a client saw of a turn survives power loss as before. docs/storage.md
  ("Turn start") has the whole argument.

fsyncs are coalesced: one runs at a time and covers every commit made before it started.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hotplex.errors import StorageError

__all__ = ["FastWriter"]

T = TypeVar("T")


class FastWriter:
    """One ``sqlite3`` connection on its own thread, for short write transactions.

    ``fsync``: whether commits need the WAL synced afterwards (the storage's ``synchronous``
    is FULL or EXTRA); without it :meth:`synced` is done at once.
    """

    def __init__(self, path: Path, *, busy_timeout: float, fsync: bool) -> None:
        self.path = path
        self._busy_ms = int(busy_timeout * 1000)
        self._fsync = fsync
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hotplex-db")
        self._conn: sqlite3.Connection | None = None
        self._committed = 0  # commits made
        self._synced = 0  # commits known to be on disk
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._syncing: asyncio.Task[None] | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
            for pragma in (
                f"PRAGMA busy_timeout = {self._busy_ms}",
                "PRAGMA synchronous = NORMAL",
                "PRAGMA foreign_keys = ON",
            ):
                conn.execute(pragma)
            self._conn = conn
        return self._conn

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(conn)`` in one ``BEGIN IMMEDIATE`` transaction and commit it (to the
        WAL; see :meth:`synced`). The caller holds the storage's write lock."""
        loop = asyncio.get_running_loop()
        done = loop.run_in_executor(self._thread, self._transaction, work)
        # counted when it ends, even if the caller is cancelled meanwhile: the thread goes
        # on with the transaction, and a commit must get its fsync
        done.add_done_callback(self._count)
        try:
            return await asyncio.shield(done)
        except sqlite3.Error as exc:
            raise StorageError(f"storage write failed: {exc}") from exc

    def _count(self, done: asyncio.Future[Any]) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        self._committed += 1
        if self._fsync:
            self._start_sync()
        else:
            self._synced = self._committed

    def synced(self) -> asyncio.Future[None]:
        """Done once every commit made so far is on disk (StorageError if the fsync
        failed)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._synced >= self._committed:
            future.set_result(None)
        else:
            self._waiters.append((self._committed, future))
            self._start_sync()
        return future

    def _start_sync(self) -> None:
        if self._syncing is None or self._syncing.done():
            self._syncing = asyncio.create_task(self._sync_loop(), name="hotplex-db-fsync")

    async def _sync_loop(self) -> None:
        while self._synced < self._committed:
            target = self._committed
            try:
                await asyncio.to_thread(_fsync_wal, self.path)
            except OSError as exc:
                self._settle(target, StorageError(f"syncing the database failed: {exc}"))
                return
            self._synced = target
            self._settle(target, None)

    def _settle(self, upto: int, error: BaseException | None) -> None:
        keep = []
        for gen, future in self._waiters:
            if gen > upto:
                keep.append((gen, future))
            elif not future.done():
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)
        self._waiters = keep

    async def close(self) -> None:
        if self._syncing is not None:
            await asyncio.gather(self._syncing, return_exceptions=True)
        loop = asyncio.get_running_loop()
        if self._conn is not None:
            await loop.run_in_executor(self._thread, self._close_connection)
        self._thread.shutdown(wait=False)

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _fsync_wal(database: Path) -> None:
    """fsync the database's WAL file. fsync flushes the file, whichever descriptor asks. A
    missing WAL was checkpointed into the database and removed, which SQLite syncs first."""
    try:
        fd = os.open(f"{database}-wal", os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
