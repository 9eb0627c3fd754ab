"""A separate OS process for the storage tests: ``python _worker.py COMMAND URL ...``.

- ``migrate URL`` opens the storage (core migrations and a slow plugin migration), prints
  ``opened`` and exits.
- ``write URL SESSION`` appends batches of 5 events (seqs continuing after the stored ones)
  plus one audit event per transaction, printing ``committed <last seq>`` after each commit,
  until killed.
- ``append URL SESSION N`` prints ``opened``, appends N events one transaction each, then
  prints ``done``.
- ``lease URL HOLDER ROUNDS`` opens the storage, prints ``ready``, waits for a line on
  stdin, then tries to acquire the leases ``race-0`` .. ``race-<ROUNDS-1>`` as HOLDER,
  printing ``won <name>`` for each it got, then ``done``.
- ``fill URL SESSION LIMIT`` sets RLIMIT_FSIZE to LIMIT bytes and appends large events until
  a write fails; prints ``committed <seq>`` per commit, then ``failed <ErrorType>``.
"""

from __future__ import annotations

import asyncio
import resource
import signal
import sys
import time

from sqlalchemy import Column, Connection, Integer, MetaData, Table, insert

from hotplex.errors import StorageError
from hotplex.events import AuditEvent, agent_event
from hotplex.storage import Migration
from hotplex.storage.sql import SqlStorage


def _slow_plugin_table(conn: Connection) -> None:
    md = MetaData()
    table = Table("worker_plugin", md, Column("id", Integer, primary_key=True))
    table.create(conn)  # fails if a second process also ran this migration
    time.sleep(0.3)  # widen the window in which a second daemon could interfere
    conn.execute(insert(table).values(id=1))


PLUGIN_MIGRATIONS = [Migration("worker", 1, "a slow plugin table", _slow_plugin_table)]


async def migrate(url: str) -> None:
    storage = SqlStorage(url, migrations=PLUGIN_MIGRATIONS)
    await storage.open()
    await storage.close()
    print("opened", flush=True)


async def write(url: str, session: str) -> None:
    storage = SqlStorage(url)
    await storage.open()
    stored = await storage.read_events(session, since_seq=0, limit=1_000_000)
    seq = stored[-1].seq if stored else 0
    while True:
        batch = []
        for _ in range(5):
            seq += 1
            event = agent_event("text", text=f"event {seq} " + "x" * 300)
            batch.append(event.stamped(session_id=session, turn_id="t", seq=seq, request_id=None))
        audit = [AuditEvent(type="cron.run", data={"seq": seq}, session_id=session)]
        await storage.append_batch(batch, audit)
        print(f"committed {seq}", flush=True)


async def append(url: str, session: str, count: int) -> None:
    storage = SqlStorage(url)
    await storage.open()
    print("opened", flush=True)
    for seq in range(1, count + 1):
        event = agent_event("status", text=f"{seq}")
        await storage.append_batch(
            [event.stamped(session_id=session, turn_id="t", seq=seq, request_id=None)], ()
        )
    await storage.close()
    print("done", flush=True)


async def fill(url: str, session: str, limit: int) -> None:
    storage = SqlStorage(url)
    await storage.open()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    seq = 0
    try:
        while True:
            seq += 1
            event = agent_event("text", text="y" * 20_000)
            await storage.append_batch(
                [event.stamped(session_id=session, turn_id="t", seq=seq, request_id=None)], ()
            )
            print(f"committed {seq}", flush=True)
    except StorageError as exc:
        print(f"failed {type(exc).__name__}", flush=True)
    finally:
        await storage.close()


async def lease(url: str, holder: str, rounds: int) -> None:
    storage = SqlStorage(url)
    await storage.open()
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # every racer starts at the same moment
    for i in range(rounds):
        if await storage.acquire_lease(f"race-{i}", holder, 60.0):
            print(f"won race-{i}", flush=True)
    await storage.close()
    print("done", flush=True)


def main(argv: list[str]) -> None:
    command, url, *rest = argv
    if command == "migrate":
        asyncio.run(migrate(url))
    elif command == "write":
        asyncio.run(write(url, rest[0]))
    elif command == "append":
        asyncio.run(append(url, rest[0], int(rest[1])))
    elif command == "lease":
        asyncio.run(lease(url, rest[0], int(rest[1])))
    elif command == "fill":
        asyncio.run(fill(url, rest[0], int(rest[1])))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
