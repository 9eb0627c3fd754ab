"""The engine's state in storage: its session table, queued turns and agent processes, and
what a restart does with them.

On start-up, before anything can resume a session, :func:`reap_orphans` kills the agent
process groups a crashed predecessor left behind (checked by pid *and* start time, so a
reused pid is never hit, and through the agent's cgroup when there is one); agents it never
recorded are found by their tag (:mod:`hotplex.engine.survivors`). Then the
sessions come back (same ids, provider session ids, work directories and seq counters);
a turn that was running when the daemon died is reported to its conversation as
interrupted, and turns that were queued run again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from dataclasses import fields
from pathlib import Path

from hotplex.agent_process import process_start_time
from hotplex.confinement import LimitBackend
from hotplex.engine.session import Session
from hotplex.interfaces import Storage
from hotplex.stored import SESSION_FIELDS, SessionRecord, SessionState

__all__ = ["CARRIED", "reap_orphans", "record_of", "restore"]

log = logging.getLogger(__name__)


#: The stored fields a live Session carries under the same name (the others are mapped in
#: :func:`record_of` and :func:`restore`: ``work_dir`` a Path, ``seq`` is ``last_seq``,
#: and the process and turn fields describe the live state).
CARRIED = tuple(
    name
    for name in SESSION_FIELDS
    if name in {f.name for f in fields(Session)} and name != "work_dir"
)


def record_of(session: Session, *, ending: bool = False) -> SessionRecord:
    """The session's record; ``ending``: as it will be once its running turn has ended
    (stored with the turn's end, in one transaction)."""
    process = session.process
    pid = process.pid if process is not None and process.alive else None
    current = None if ending else session.current
    state: SessionState = "running"
    if current is None:
        state = "idle" if pid is not None else "stopped"
    carried = {name: getattr(session, name) for name in CARRIED}
    if ending and session.current is not None:
        carried["turns"] = session.turns + 1
    carried["overrides"] = dict(session.overrides)
    return SessionRecord(
        **carried,
        work_dir=str(session.work_dir),
        state=state,
        agent_pid=pid,
        agent_pgid=pid,
        agent_start_time=process_start_time(pid) if pid is not None else None,
        last_seq=session.seq,
        running_turn_id=current.turn_id if current is not None else None,
        updated_at=time.time(),
    )


def _same_process(pid: int | None, started: int | None) -> bool:
    return pid is not None and started is not None and process_start_time(pid) == started


def _zombie(pid: int | None) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def reap_orphans(
    records: list[SessionRecord], backend: LimitBackend | None, *, wait: float = 5.0
) -> int:
    """Kill the agent process groups of a previous daemon, and wait (bounded) until they
    are gone; how many were found alive. Blocking: run it in a thread."""
    killed: list[SessionRecord] = []
    for record in records:
        pid, pgid, started = record.agent_pid, record.agent_pgid, record.agent_start_time
        if pid is not None and _same_process(pid, started):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid or pid, signal.SIGKILL)
                killed.append(record)
                log.warning(
                    "killed agent %d of session %s left by a previous daemon", pid, record.key
                )
        if backend is not None and record.provider_session_id:
            group = f"agent-{record.provider_session_id}"
            backend.kill_group(group)
            backend.release(group)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(
        _same_process(r.agent_pid, r.agent_start_time) and not _zombie(r.agent_pid) for r in killed
    ):
        time.sleep(0.01)  # SIGKILL is delivered asynchronously
    return len(killed)


async def restore(storage: Storage, record: SessionRecord) -> Session:
    """A Session object for a stored session; its seq continues after every stored event."""
    tail = await storage.read_events(record.session_id, since_seq=record.last_seq, limit=1_000_000)
    seq = max([record.last_seq, *(e.seq for e in tail)])
    carried = {name: getattr(record, name) for name in CARRIED}
    carried["overrides"] = dict(record.overrides)
    return Session(**carried, work_dir=Path(record.work_dir), seq=seq, started_once=True)
