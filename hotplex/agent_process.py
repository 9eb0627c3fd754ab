"""One agent subprocess: spawned in its own session, read line by line, stopped for sure.

- Its own process group (``start_new_session``), so a stop reaches every child.
- stdout framed into lines by hand: lines of any length up to ``max_line`` (64 MiB) parse;
  asyncio's readline limit would drop multi-megabyte lines.
- stderr drained continuously into a bounded tail (a flood never blocks the child).
- :meth:`stop`: SIGTERM to the group, a grace period, SIGKILL, then the limit backend's
  group kill (cgroups catch grandchildren that left the group), then reap. It completes even
  when the task awaiting it is cancelled.
- Process exit, not stdout EOF, ends the stream: a grandchild holding stdout open cannot
  hang a reader past ``pipe_grace``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hotplex.aio import cancel_and_wait
from hotplex.confinement import Confinement
from hotplex.errors import AgentStartError, ProtocolError

__all__ = ["AgentSubprocess", "group_members", "process_start_time"]

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
DEFAULT_MAX_LINE = 64 * 1024 * 1024
STDERR_TAIL = 16 * 1024


def process_start_time(pid: int) -> int | None:
    """The process start time in clock ticks since boot (field 22 of /proc/<pid>/stat);
    with the pid it identifies a process across pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])


def group_members(pgid: int) -> list[int]:
    """Pids of the live (not zombie) processes in process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def use_pidfd_child_watcher() -> None:
    """Watch agent processes through pidfds on the event loop (Linux 5.3+), not with a
    thread per process: Python 3.11's default ``ThreadedChildWatcher`` costs each live agent
    a blocked thread (stack and thread state, tens of KB of the daemon's RSS). Python 3.12
    does this by itself; elsewhere nothing changes."""
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return
    policy = asyncio.get_event_loop_policy()
    if isinstance(policy.get_child_watcher(), _PidfdWatcher):
        return
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # an old kernel, or a sandbox that forbids the call
        return
    # the old watcher's threads go on serving the children they watch
    policy.set_child_watcher(_PidfdWatcher())


class _PidfdWatcher(asyncio.AbstractChildWatcher):
    """Python 3.12's child watcher for 3.11: each child's pidfd is read by the loop that
    spawned it, so it works on any loop, in any thread, with no thread of its own."""

    def add_child_handler(  # type: ignore[override]  # typeshed's TypeVarTuple form
        self, pid: int, callback: Callable[..., object], *args: Any
    ) -> None:
        loop = asyncio.get_running_loop()
        pidfd = os.pidfd_open(pid)
        loop.add_reader(pidfd, self._reap, loop, pid, pidfd, callback, args)

    @staticmethod
    def _reap(
        loop: asyncio.AbstractEventLoop,
        pid: int,
        pidfd: int,
        callback: Callable[..., object],
        args: tuple[Any, ...],
    ) -> None:
        loop.remove_reader(pidfd)
        try:
            _, status = os.waitpid(pid, 0)
            returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            returncode = 255
            log.warning("child %d was reaped by someone else; returncode 255", pid)
        finally:
            os.close(pidfd)
        callback(pid, returncode, *args)

    def remove_child_handler(self, pid: int) -> bool:
        return True  # the reader goes when the child exits

    def attach_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        pass

    def close(self) -> None:
        pass

    def is_active(self) -> bool:
        return True

    def __enter__(self) -> _PidfdWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Tells when the process exits, even while a grandchild holds its pipes open
    (``Process.wait`` waits for the pipes too before Python 3.13)."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        self.exited = asyncio.Event()

    def process_exited(self) -> None:
        super().process_exited()
        self.exited.set()

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 0 and self._stdin_closed.done():  # type: ignore[attr-defined]
            return  # closing stdin and then the transport reports stdin twice
        super().pipe_connection_lost(fd, exc)


class AgentSubprocess:
    """A spawned agent with line-framed stdout and a bounded stderr tail."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        protocol: _Protocol,
        *,
        max_line: int,
        pipe_grace: float,
    ):
        self._proc = proc
        self._protocol = protocol
        self.pid = proc.pid
        self.pgid = proc.pid
        self.start_time = process_start_time(proc.pid)
        self._max_line = max_line
        self._pipe_grace = pipe_grace
        self._stderr: deque[bytes] = deque()
        self._stderr_size = 0
        self._lines: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._write_lock = asyncio.Lock()
        self._stopping: asyncio.Task[int] | None = None
        self._exited = asyncio.Event()
        self.returncode: int | None = None
        self.confinement: Confinement | None = None
        self._tasks = [
            asyncio.create_task(self._read_stdout(), name=f"agent-stdout:{self.pid}"),
            asyncio.create_task(self._read_stderr(), name=f"agent-stderr:{self.pid}"),
            asyncio.create_task(self._watch_exit(), name=f"agent-exit:{self.pid}"),
        ]

    @classmethod
    async def spawn(
        cls,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        max_line: int = DEFAULT_MAX_LINE,
        pipe_grace: float = 2.0,
        confinement: Confinement | None = None,
    ) -> AgentSubprocess:
        """Start ``argv``; under ``confinement`` it runs only once its limits are in place."""
        loop = asyncio.get_running_loop()
        if confinement is not None:
            argv = confinement.backend.wrap(list(argv), confinement.limits)
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _Protocol(CHUNK, loop),
                *argv,
                cwd=str(cwd),
                env=dict(env),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise AgentStartError(f"cannot start {argv[0]}: {exc.strerror or exc}") from exc
        proc = asyncio.subprocess.Process(transport, protocol, loop)
        sub = cls(proc, protocol, max_line=max_line, pipe_grace=pipe_grace)
        sub.confinement = confinement
        if confinement is not None:
            try:
                await asyncio.to_thread(
                    confinement.backend.attach, proc.pid, confinement.group, confinement.limits
                )
            except BaseException:
                await sub.stop(0.5)
                raise
        return sub

    # -- reading -----------------------------------------------------------------------

    async def _read_stdout(self) -> None:
        stream = self._proc.stdout
        assert stream is not None
        buffer = bytearray()
        try:
            while True:
                chunk = await stream.read(CHUNK)
                if not chunk:
                    break
                start = 0
                while (end := chunk.find(b"\n", start)) != -1:
                    buffer += chunk[start:end]
                    self._lines.put_nowait(bytes(buffer))
                    buffer.clear()
                    start = end + 1
                buffer += chunk[start:]
                del chunk  # not held while waiting for the next one
                if len(buffer) > self._max_line:
                    log.error(
                        "agent %d wrote a line over %d bytes; stopping it", self.pid, self._max_line
                    )
                    buffer.clear()
                    self._lines.put_nowait(b'{"type":"_hotplex_line_too_long"}')
                    break
            if buffer:
                self._lines.put_nowait(bytes(buffer))
        except (OSError, ValueError) as exc:
            log.debug("agent %d stdout closed: %r", self.pid, exc)
        finally:
            self._lines.put_nowait(None)

    async def _read_stderr(self) -> None:
        stream = self._proc.stderr
        assert stream is not None
        with contextlib.suppress(OSError, ValueError):
            while chunk := await stream.read(CHUNK):
                self._stderr.append(chunk)
                self._stderr_size += len(chunk)
                while self._stderr_size - len(self._stderr[0]) >= STDERR_TAIL:
                    self._stderr_size -= len(self._stderr.popleft())

    async def _watch_exit(self) -> None:
        await self._protocol.exited.wait()
        self.returncode = self._proc.returncode
        self._exited.set()
        # A grandchild may hold stdout open after the agent exited: give the reader a grace
        # period to drain what was written, then stop waiting for EOF.
        try:
            await asyncio.wait_for(asyncio.shield(self._tasks[0]), self._pipe_grace)
        except TimeoutError:
            log.warning("agent %d exited but its stdout stays open; closing it", self.pid)
            self._close_pipes()
            self._lines.put_nowait(None)

    def _close_pipes(self) -> None:
        transport = getattr(self._proc, "_transport", None)
        if transport is not None:
            transport.close()

    async def read_message(self) -> dict[str, Any] | None:
        """The next JSON object from stdout; None at the end. Non-JSON lines are skipped."""
        while True:
            line = await self._lines.get()
            if line is None:
                self._lines.put_nowait(None)  # later readers see the end too
                return None
            text = line.strip()
            if not text:
                continue
            try:
                message = json.loads(text)
            except ValueError:
                log.debug("agent %d wrote a non-JSON line: %.200r", self.pid, text)
                continue
            if isinstance(message, dict):
                return message

    def stderr_tail(self, limit: int = 2000) -> str:
        text = b"".join(self._stderr).decode("utf-8", "replace")
        return text[-limit:].strip()

    # -- writing -----------------------------------------------------------------------

    async def write_message(self, message: Mapping[str, Any], timeout: float = 10.0) -> None:
        """Write one validated JSON line (a single invalid line kills the Claude CLI)."""
        line = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        if "\n" in line:  # json.dumps escapes newlines; a raw one would split the message
            raise ProtocolError("refusing to write a message that spans lines")
        stdin = self._proc.stdin
        if stdin is None or stdin.is_closing() or self.returncode is not None:
            raise ProtocolError("the agent's stdin is closed")
        async with self._write_lock:
            stdin.write(line.encode() + b"\n")
            try:
                await asyncio.wait_for(stdin.drain(), timeout)
            except (ConnectionError, TimeoutError) as exc:
                raise ProtocolError(f"cannot write to the agent: {exc!r}") from exc

    async def close_stdin(self) -> None:
        stdin = self._proc.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
            with contextlib.suppress(ConnectionError, BrokenPipeError):
                await stdin.wait_closed()

    # -- stopping ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.returncode is None

    async def wait(self, timeout: float | None = None) -> int | None:
        try:
            await asyncio.wait_for(self._exited.wait(), timeout)
        except TimeoutError:
            return None
        return self.returncode

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, sig)

    async def stop(self, grace: float = 5.0) -> int:
        """Stop the whole group; idempotent, and finishes even if the caller is cancelled."""
        if self._stopping is None:
            self._stopping = asyncio.create_task(self._stop(grace), name=f"agent-stop:{self.pid}")
        return await asyncio.shield(self._stopping)

    async def _stop(self, grace: float) -> int:
        self._signal_group(signal.SIGTERM)
        if await self.wait(grace) is None:
            log.info("agent %d ignored SIGTERM for %.1fs; killing its group", self.pid, grace)
        # SIGKILL the group even after a clean exit: children may outlive the leader.
        self._signal_group(signal.SIGKILL)
        returncode = await self.wait(grace + 5.0)
        deadline = asyncio.get_running_loop().time() + 2.0
        while group_members(self.pgid) and asyncio.get_running_loop().time() < deadline:
            self._signal_group(signal.SIGKILL)
            await asyncio.sleep(0.01)  # SIGKILL is delivered asynchronously
        if self.confinement is not None:  # catches what left the group with setsid()
            backend, group = self.confinement.backend, self.confinement.group
            escaped = await asyncio.to_thread(backend.kill_group, group)
            if escaped:
                log.info("agent %d: killed %d processes left in its cgroup", self.pid, escaped)
            await asyncio.to_thread(backend.release, group)
        self._close_pipes()
        await cancel_and_wait(*self._tasks)
        if returncode is None:
            raise AgentStartError(f"agent {self.pid} could not be reaped")
        return returncode
