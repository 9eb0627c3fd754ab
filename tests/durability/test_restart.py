"""Durability across daemon restarts and crashes, with ``hotplex serve`` as a real process
driven over the WebSocket gateway, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotplex.address import session_id_for
from hotplex.agent_process import process_start_time
from hotplex.config.models import DEFAULT_NAMESPACE
from hotplex.confinement import AgentLimits
from hotplex.engine.limits import detect_backend
from hotplex.engine.rlimits import HOLD_GATE_ENV
from hotplex.storage.sql import SqlStorage
from hotplex.stored import SessionRecord
from hotplex.testing.daemon import Daemon
from hotplex.testing.fake_agent import write_wrapper
from hotplex.testing.fake_anthropic import FakeAnthropic
from hotplex.testing.real_cli import require_cli

KEY = "k-durability-0123456789"
ROUNDS = int(os.environ.get("HOTPLEX_CHAOS_ROUNDS", "50"))


def write_config(tmp_path: Path, db_url: str, binary: Path) -> Path:
    config = {
        "engine": {"data_dir": str(tmp_path / "data"), "kill_grace": "1s"},
        "storage": {"url": db_url},
        "provider": {"binary": str(binary)},
        "server": {
            "port": 0,
            "api_keys": [{"name": "tester", "key": KEY}],
            "rate_limit": {"enabled": False},
        },
    }
    path = tmp_path / "hotplex.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def engine_id(client_session: str) -> str:
    return session_id_for(f"web:tester/{client_session}", DEFAULT_NAMESPACE)


@asynccontextmanager
async def opened(db_url: str) -> AsyncIterator[SqlStorage]:
    storage = SqlStorage(db_url)
    await asyncio.wait_for(storage.open(), 30)
    try:
        yield storage
    finally:
        await storage.close()


def texts(frames: list[dict[str, Any]]) -> str:
    return " ".join(f["data"]["text"] for f in frames if f["type"] == "text")


@pytest.mark.real_cli
@pytest.mark.timeout(180)
async def test_restart_between_turns_keeps_the_conversation(tmp_path: Path, db_url: str) -> None:
    claude = require_cli("claude")
    async with FakeAnthropic() as api:
        env = {"ANTHROPIC_BASE_URL": api.base_url, "ANTHROPIC_API_KEY": "sk-test"}
        daemon = Daemon(write_config(tmp_path, db_url, claude), env=env)
        await daemon.start()
        try:
            async with daemon.client(KEY) as client:
                first = await client.execute("chat", "my word is KIWI")
        finally:
            assert await daemon.stop() == 0
        await daemon.start()
        try:
            async with daemon.client(KEY) as client:
                second = await client.execute("chat", "RECALL")
        finally:
            assert await daemon.stop() == 0
    assert texts(first) == "echo: my word is KIWI"
    assert "my word is KIWI" in texts(second)  # the agent saw the first turn
    assert second[0]["type"] == "session" and second[0]["data"]["state"] == "resumed"
    assert second[0]["seq"] > first[-1]["seq"]  # one stream across the restart
    async with opened(db_url) as storage:
        stored = await storage.read_events(engine_id("chat"))
        assert [e.seq for e in stored if e.turn_id == first[-1]["turn_id"]][-1] == first[-1]["seq"]


def alive(record: SessionRecord) -> bool:
    """The record's agent process still runs (not a zombie)."""
    pid, started = record.agent_pid, record.agent_start_time
    if pid is None or started is None or process_start_time(pid) != started:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def strays(data_dir: Path, daemon_pid: int) -> list[str]:
    """Live processes working under ``data_dir`` (gate shells and agents: their cwd is a
    session's work directory) that are not descendants of the running daemon."""
    root = str(data_dir.resolve())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if cwd != root and not cwd.startswith(root + os.sep):
            continue
        ancestor = pid
        for _ in range(64):  # up the parent chain, bounded
            stat = _stat(ancestor)
            if stat is None or ancestor in (0, 1) or ancestor == daemon_pid:
                break
            ancestor = int(stat[1])
        stat = _stat(pid)
        if ancestor != daemon_pid and stat is not None and stat[0] not in ("Z", "X"):
            found.append(f"{pid} [{stat[0]}] {argv.decode(errors='replace')[:120]}")
    return found


@pytest.mark.timeout(900)
async def test_sigkill_at_random_points_loses_and_repeats_nothing(
    tmp_path: Path, db_url: str
) -> None:
    rng = random.Random(int(os.environ.get("HOTPLEX_CHAOS_SEED", "20261122")))
    binary = write_wrapper(tmp_path / "bin", "--fake-slow", "0.01")
    daemon = Daemon(write_config(tmp_path, db_url, binary))
    seen: dict[str, list[dict[str, Any]]] = {}  # prompt -> frames its client saw
    done: set[str] = set()  # prompts whose done a client saw
    survivors: list[int] = []
    strayed: list[str] = []
    progressed = asyncio.Event()  # a turn of the current round completed

    async def chat(session: str, round_no: int) -> None:
        async with daemon.client(KEY) as client:
            for n in range(1000):
                prompt = f"round {round_no} session {session} message {n} one two three"
                frames = seen.setdefault(prompt, [])
                await client.execute(session, prompt, seen=frames, timeout=30)
                done.add(prompt)
                progressed.set()

    for round_no in range(ROUNDS):
        async with opened(db_url) as storage:
            before = await storage.load_sessions() if round_no else []
        await daemon.start()
        survivors += [r.agent_pid for r in before if alive(r) and r.agent_pid]
        strayed += strays(tmp_path / "data", daemon.pid)
        progressed.clear()
        clients = [asyncio.create_task(chat(s, round_no)) for s in ("a", "b", "c")]
        if round_no % 2:
            # Every other kill lands only after a turn of the round completed, so that the
            # test checks finished turns on a slow or loaded machine too; the other kills
            # land anywhere, during start-up and the recovery of the last round included.
            try:
                async with asyncio.timeout(30):
                    await progressed.wait()
            except TimeoutError:
                pytest.fail(f"round {round_no}: no turn completed within 30 s")
        await asyncio.sleep(rng.uniform(0.05, 0.6))  # the random kill point
        await daemon.kill()
        for task in clients:
            task.cancel()
        await asyncio.gather(*clients, return_exceptions=True)

    async with opened(db_url) as storage:
        before = await storage.load_sessions()
    await daemon.start()
    survivors += [r.agent_pid for r in before if alive(r) and r.agent_pid]
    strayed += strays(tmp_path / "data", daemon.pid)
    try:  # the restarted daemon finishes whatever was left, each once
        async with opened(db_url) as storage:
            async with asyncio.timeout(60):
                while await storage.pending_turns() or await storage.pending_inbound():
                    await asyncio.sleep(0.1)
    finally:
        assert await daemon.stop() == 0
    assert survivors == [], "agents of a killed daemon survived its successor's start"
    assert strayed == [], "gate shells or agents of a killed daemon survived its successor"

    async with opened(db_url) as storage:
        assert await storage.integrity_check() == []
        stored: dict[str, list[Any]] = {}
        for session in ("a", "b", "c"):
            stored[session] = await storage.read_events(engine_id(session), limit=1_000_000)
        for records in await storage.load_sessions():
            assert not alive(records)
    assert len(done) >= ROUNDS // 2, f"too few turns completed to mean anything: {len(done)}"
    by_turn: dict[str, list[Any]] = {}
    echoes: dict[str, int] = {}
    for events in stored.values():
        for event in events:
            by_turn.setdefault(event.turn_id, []).append(event)
            if event.type == "text" and event.data["text"].startswith("echo: "):
                prompt = event.data["text"].removeprefix("echo: ")
                echoes[prompt] = echoes.get(prompt, 0) + 1
    for prompt in done:  # every turn whose done a client saw is fully stored
        frames = [f for f in seen[prompt] if f["type"] != "text_delta"]
        turn = by_turn[frames[-1]["turn_id"]]
        assert [(e.seq, e.type, e.data) for e in turn] == [
            (f["seq"], f["type"], f["data"]) for f in frames
        ]
    repeated = {p: n for p, n in echoes.items() if n > 1}
    assert repeated == {}, "messages processed more than once"
    assert all(echoes.get(p) == 1 for p in done)


@pytest.mark.timeout(120)
async def test_sigterm_with_five_live_sessions_stops_cleanly(tmp_path: Path, db_url: str) -> None:
    """Reliability row 56: every agent group killed, state flushed, exit within 10 s."""
    binary = write_wrapper(tmp_path / "bin", "--fake-slow", "0.2")
    daemon = Daemon(write_config(tmp_path, db_url, binary))
    await daemon.start()
    started = asyncio.get_running_loop().time()
    try:
        async with daemon.client(KEY) as client:
            for n in range(5):  # five idle, live agents
                await client.execute(f"s{n}", "hello there")
            # and one turn still streaming when the signal lands
            await client.ws.send_json(
                {"type": "execute", "session_id": "s0", "prompt": "a long answer " * 20}
            )
            async with opened(db_url) as storage:
                live = [r for r in await storage.load_sessions() if alive(r)]
            assert len(live) == 5
            started = asyncio.get_running_loop().time()
            code = await daemon.stop(timeout=10)
    finally:
        if daemon.proc is not None and daemon.proc.returncode is None:
            await daemon.kill()
    assert code == 0 and asyncio.get_running_loop().time() - started < 10
    assert not any(alive(r) for r in live)
    async with opened(db_url) as storage:
        assert await storage.integrity_check() == []
        assert await storage.pending_turns() == []  # the interrupted turn was finished
        records = await storage.load_sessions()
    assert {r.state for r in records} == {"stopped"}


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def read_fifo_line(path: Path, timeout: float) -> str:
    """The first line written into the FIFO ``path`` (read without blocking the loop)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    loop = asyncio.get_running_loop()
    data = b""
    try:
        async with asyncio.timeout(timeout):
            while not data.endswith(b"\n"):
                ready: asyncio.Future[None] = loop.create_future()
                loop.add_reader(fd, _settle, ready)
                try:
                    await ready
                finally:
                    loop.remove_reader(fd)
                with contextlib.suppress(BlockingIOError):
                    data += os.read(fd, 64)
    finally:
        os.close(fd)
    return data.decode()


@pytest.mark.timeout(120)
async def test_sigkill_while_an_agent_waits_at_its_gate_leaves_no_survivor(
    tmp_path: Path, db_url: str
) -> None:
    """The daemon dies after starting an agent's gate shell and before recording it: its
    successor finds the stopped shell by its tag and kills it."""
    if detect_backend().wrap(["true"], AgentLimits())[0] != "/bin/sh":
        pytest.skip("the limit backend here starts agents without a gate")
    fifo = tmp_path / "gate.fifo"
    os.mkfifo(fifo)
    binary = write_wrapper(tmp_path / "bin")
    daemon = Daemon(write_config(tmp_path, db_url, binary), env={HOLD_GATE_ENV: str(fifo)})
    await daemon.start()
    killed = False
    try:
        async with daemon.client(KEY) as client:
            sending = asyncio.create_task(client.execute("held", "hello", timeout=60))
            try:
                gate = int(await read_fifo_line(fifo, 30))
                stat = _stat(gate)
                argv = Path(f"/proc/{gate}/cmdline").read_bytes().split(b"\0")
                assert stat is not None and stat[0] in ("T", "t"), stat
                assert argv[:2] == [b"/bin/sh", b"-c"] and b"kill -STOP" in argv[2]
                await daemon.kill()
                killed = True
            finally:
                sending.cancel()
                await asyncio.gather(sending, return_exceptions=True)
    finally:
        if not killed:
            await daemon.kill()
    assert _stat(gate) is not None and strays(tmp_path / "data", 0), "nothing was left"
    del daemon.env[HOLD_GATE_ENV]
    await daemon.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10  # recovery ran before serving; allow for the reaping
        while (stat := _stat(gate)) is not None and stat[0] not in ("Z", "X"):
            if loop.time() > deadline:
                break
            await asyncio.sleep(0.05)
        assert strays(tmp_path / "data", daemon.pid) == [], "the gate shell survived"
        async with daemon.client(KEY) as client:  # and the session works again
            frames = await client.execute("held", "hello again", timeout=60)
        assert frames[-1]["type"] == "done"
    finally:
        if strays(tmp_path / "data", daemon.pid):  # leave nothing behind on failure
            with contextlib.suppress(ProcessLookupError):
                os.killpg(gate, signal.SIGKILL)
        assert await daemon.stop() == 0
