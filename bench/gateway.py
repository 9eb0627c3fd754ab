"""Gateway benchmark: many WebSocket clients on one daemon, and what the gateway adds per event.

Starts ``hotplex serve`` as a subprocess (``hotplex.testing.daemon.Daemon``, SQLite storage,
rate limit off) whose agent is the fake Claude CLI (``hotplex.testing.fake_agent``, which
answers ``echo: <text>`` one word per ``text_delta``, paced by ``--fake-slow``). For each
client count N (a fresh daemon per N):

(a) hold N sessions: N WebSocket clients, **one socket and one session id each**, connect and
    run a first turn at once (N agent processes spawn); every turn must reach ``done ok``.
(b) throughput: every client then runs ``--turns`` further turns back to back, all clients
    at once; turns/s and events/s (frames received) over the wall time of the phase, plus
    the per-turn time (execute -> done).
(c) per-event latency added by the gateway (N <= 100 only): with the N sessions live and
    idle, probe turns alternate between a gateway session (round robin over the N) and the
    same fake agent spawned by this script on a raw pipe (same argv, one stream-json
    ``user`` line per turn). Each event's arrival is timed from the send: the k-th
    ``text_delta`` frame against the k-th ``text_delta`` stream line, and ``done`` against
    ``result``. Reported as the median of the per-event paired differences (gateway - raw),
    pairs in alternating order. This includes the turn's start (execute -> the agent's
    stdin), which every event of the turn inherits; the row "from the 1st event" takes each
    later event relative to its turn's first event on both sides, which leaves out that
    constant and shows what relaying one more event adds.
(d) daemon memory: VmRSS of the daemon process (/proc/<pid>/status) after one warm-up turn
    vs with the N sessions live, divided by N. The agents are separate processes and are
    not counted.

Run from the repository root::

    .venv/bin/python bench/gateway.py [--clients 10,100,500] [--turns N] [--json out] [--quick]

``--quick`` = clients 5,20, 2 turns, 10 latency pairs (the smoke test). Each fake agent is a
Python process (~15 MiB): N is capped to what /proc/meminfo's MemAvailable allows, with a
message. Exit status 0 even when a target is missed (the verdict lines say so).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from _report import BenchError, Stats, Verdict, elapsed, progress

from hotplex.testing.daemon import Daemon
from hotplex.testing.fake_agent import command, write_wrapper

KEY = "k-bench-gateway-0123456789"
FAKE_SLOW = "0.002"  # seconds between text deltas: each event crosses the pipeline alone
PROMPT_WORDS = 8  # reply "echo: p<i> w w ..." = 10 text deltas
START_TIMEOUT = 60.0
FIRST_TURN_TIMEOUT = 180.0  # N agents spawning at once on 2 cores
TURN_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
AGENT_BUDGET_KIB = 24 * 1024  # free memory reserved per fake agent (measured ~15 MiB)
MEMORY_MARGIN_KIB = 2 * 1024 * 1024
LATENCY_MAX_CLIENTS = 100

TARGET_SESSIONS = 500
TARGET_ADDED_MS = 1.0
TARGET_LATENCY_CLIENTS = 100
TARGET_RSS_BYTES = 100_000


def prompt(i: int) -> str:
    return f"p{i} " + " ".join(["w"] * (PROMPT_WORDS - 1))


# -- processes ------------------------------------------------------------------------------


def meminfo_kib(field: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def descendants(root: int) -> list[int]:
    """Every live descendant of ``root`` (by /proc ppid), for the cleanup in ``finally``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_pids(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def write_config(root: Path, binary: Path, sessions: int) -> Path:
    config = {
        "engine": {
            "data_dir": str(root / "data"),
            "kill_grace": "1s",
            "max_sessions": sessions + 16,
        },
        "storage": {"url": f"sqlite+aiosqlite:///{root / 'data' / 'hotplex.db'}"},
        "provider": {"binary": str(binary)},
        "server": {
            "port": 0,
            "api_keys": [{"name": "bench", "key": KEY}],
            "rate_limit": {"enabled": False},
            "ws_heartbeat": 0,
        },
    }
    path = root / "hotplex.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# -- the two sides of a turn ----------------------------------------------------------------


@dataclass
class TurnTiming:
    wall: float  # send -> done/result
    events: list[float]  # send -> each text delta, then the end (done/result)
    frames: int  # frames (lines) received in the turn


async def gateway_turn(ws: aiohttp.ClientWebSocketResponse, sid: str, text: str) -> TurnTiming:
    started = time.perf_counter()
    await ws.send_str(json.dumps({"type": "execute", "session_id": sid, "prompt": text}))
    events: list[float] = []
    frames = 0
    async with asyncio.timeout(TURN_TIMEOUT):
        while True:
            message = await ws.receive()
            now = time.perf_counter()
            if message.type != aiohttp.WSMsgType.TEXT:
                raise BenchError(f"{sid}: socket ended: {message.type.name}")
            frame = json.loads(message.data)
            frames += 1
            kind = frame.get("type")
            if kind == "text_delta":
                events.append(now - started)
            elif kind == "error":
                raise BenchError(f"{sid}: error frame {frame}")
            elif kind == "done":
                if frame.get("data", {}).get("status") != "ok":
                    raise BenchError(f"{sid}: turn ended {frame}")
                events.append(now - started)
                return TurnTiming(now - started, events, frames)


class RawAgent:
    """The same fake agent on a raw pipe: the floor for per-event latency."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, root: Path) -> RawAgent:
        session = str(uuid.uuid4())
        cwd = root / "raw" / session
        cwd.mkdir(parents=True)
        argv = command(
            "--fake-slow",
            FAKE_SLOW,
            "-p",
            "--input-format",
            "stream-json",
            "--output-format",
            "stream-json",
            "--verbose",
            "--include-partial-messages",
            "--permission-prompt-tool",
            "stdio",
            "--session-id",
            session,
        )
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env={**os.environ, "CLAUDE_CONFIG_DIR": str(root / "raw-claude")},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
            limit=16 * 1024 * 1024,
        )
        return cls(proc)

    async def turn(self, text: str) -> TurnTiming:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        line = {
            "type": "user",
            "message": {"role": "user", "content": [{"type": "text", "text": text}]},
            "parent_tool_use_id": None,
            "session_id": "default",
        }
        started = time.perf_counter()
        self.proc.stdin.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
        await self.proc.stdin.drain()
        events: list[float] = []
        frames = 0
        async with asyncio.timeout(TURN_TIMEOUT):
            while raw := await self.proc.stdout.readline():
                now = time.perf_counter()
                message = json.loads(raw)
                frames += 1
                kind = message.get("type")
                if kind == "stream_event":
                    delta = message.get("event", {}).get("delta", {})
                    if delta.get("type") == "text_delta":
                        events.append(now - started)
                elif kind == "result":
                    events.append(now - started)
                    return TurnTiming(now - started, events, frames)
        raise BenchError("raw agent closed its stdout")

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


# -- one client count -----------------------------------------------------------------------


@dataclass
class Level:
    clients: int
    turns: int
    held: int  # sessions whose first turn completed
    turns_expected: int
    turns_completed: int
    errors: list[str]
    first_turns_s: float  # wall time to connect N clients and finish their first turns
    throughput_s: float
    turns_per_s: float
    events_per_s: float
    turn_ms: Stats | None
    rss0_kib: int
    rssn_kib: int
    per_session_bytes: float
    agent_rss_kib: int  # one fake agent's VmRSS, for information
    latency: dict[str, Any] | None


async def connect_all(
    http: aiohttp.ClientSession, url: str, n: int
) -> list[aiohttp.ClientWebSocketResponse]:
    gate = asyncio.Semaphore(50)

    async def one() -> aiohttp.ClientWebSocketResponse:
        async with gate:
            return await http.ws_connect(
                f"{url}/ws/v1/agent",
                headers={"Authorization": f"Bearer {KEY}"},
                timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
                max_msg_size=0,
            )

    async with asyncio.timeout(START_TIMEOUT):
        return list(await asyncio.gather(*(one() for _ in range(n))))


async def measure_latency(
    sockets: Sequence[aiohttp.ClientWebSocketResponse], root: Path, pairs: int
) -> dict[str, Any]:
    raw = await RawAgent.start(root)
    try:
        for i in range(3):  # warm-up, unrecorded
            await raw.turn(prompt(i))
            await gateway_turn(sockets[i % len(sockets)], f"c{i % len(sockets)}", prompt(i))
        diffs: list[float] = []
        relay: list[float] = []  # same, each event taken relative to its turn's first event
        gw_events: list[float] = []
        raw_events: list[float] = []
        for i in range(pairs):
            index = i % len(sockets)
            text = prompt(1000 + i)
            if i % 2 == 0:
                gw = await gateway_turn(sockets[index], f"c{index}", text)
                floor = await raw.turn(text)
            else:
                floor = await raw.turn(text)
                gw = await gateway_turn(sockets[index], f"c{index}", text)
            if len(gw.events) != len(floor.events):
                raise BenchError(f"event counts differ: {len(gw.events)} vs {len(floor.events)}")
            diffs.extend(g - r for g, r in zip(gw.events, floor.events, strict=True))
            relay.extend(
                (g - gw.events[0]) - (r - floor.events[0])
                for g, r in zip(gw.events[1:], floor.events[1:], strict=True)
            )
            gw_events.extend(gw.events)
            raw_events.extend(floor.events)
        return {
            "pairs": pairs,
            "events_per_turn": len(gw.events),
            "added_ms": asdict(Stats.of([d * 1000.0 for d in diffs])),
            "relay_added_ms": asdict(Stats.of([d * 1000.0 for d in relay])),
            "gateway_event_ms": asdict(Stats.of([t * 1000.0 for t in gw_events])),
            "raw_event_ms": asdict(Stats.of([t * 1000.0 for t in raw_events])),
        }
    finally:
        raw.kill()
        await raw.proc.wait()


async def run_level(root: Path, clients: int, turns: int, pairs: int) -> Level:
    binary = write_wrapper(root / "bin", "--fake-slow", FAKE_SLOW)
    daemon = Daemon(
        write_config(root, binary, clients), env={"CLAUDE_CONFIG_DIR": str(root / "claude")}
    )
    agents: list[int] = []
    try:
        await daemon.start(START_TIMEOUT)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            (warm,) = await connect_all(http, daemon.url, 1)
            await gateway_turn(warm, "warm", prompt(0))
            await asyncio.sleep(0.5)
            rss0 = rss_kib(daemon.pid)

            progress(f"N={clients}: connecting and running first turns")
            started = time.perf_counter()
            sockets = await connect_all(http, daemon.url, clients)
            errors: list[str] = []

            async def first(i: int) -> bool:
                try:
                    async with asyncio.timeout(FIRST_TURN_TIMEOUT):
                        await gateway_turn(sockets[i], f"c{i}", prompt(i))
                    return True
                except (BenchError, TimeoutError, aiohttp.ClientError) as exc:
                    errors.append(f"first turn c{i}: {exc!r}")
                    return False

            held = sum(await asyncio.gather(*(first(i) for i in range(clients))))
            first_s = time.perf_counter() - started
            agents = descendants(daemon.pid)
            await asyncio.sleep(0.5)
            rssn = rss_kib(daemon.pid)
            agent_rss = rss_kib(agents[-1]) if agents else 0
            progress(
                f"N={clients}: {held} sessions held in {first_s:.1f} s; "
                f"daemon RSS {rss0 / 1024:.1f} -> {rssn / 1024:.1f} MiB"
            )

            progress(f"N={clients}: {turns} turns per client, all at once")
            walls: list[float] = []
            frames = 0

            async def client(i: int) -> None:
                nonlocal frames
                for t in range(turns):
                    try:
                        timing = await gateway_turn(sockets[i], f"c{i}", prompt(t))
                    except (BenchError, TimeoutError, aiohttp.ClientError) as exc:
                        errors.append(f"turn c{i}/{t}: {exc!r}")
                        return
                    walls.append(timing.wall)
                    frames += timing.frames

            started = time.perf_counter()
            await asyncio.gather(*(client(i) for i in range(clients)))
            phase = time.perf_counter() - started
            progress(f"N={clients}: {len(walls)} turns in {phase:.1f} s")

            latency = None
            if clients <= LATENCY_MAX_CLIENTS and pairs > 0 and not errors:
                progress(f"N={clients}: {pairs} gateway/raw latency pairs")
                latency = await measure_latency(sockets, root, pairs)
            for ws in [warm, *sockets]:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 2.0)
        return Level(
            clients=clients,
            turns=turns,
            held=held,
            turns_expected=clients * turns,
            turns_completed=len(walls),
            errors=errors[:10],
            first_turns_s=first_s,
            throughput_s=phase,
            turns_per_s=len(walls) / phase,
            events_per_s=frames / phase,
            turn_ms=Stats.of([w * 1000.0 for w in walls]) if walls else None,
            rss0_kib=rss0,
            rssn_kib=rssn,
            per_session_bytes=(rssn - rss0) * 1024 / clients,
            agent_rss_kib=agent_rss,
            latency=latency,
        )
    finally:
        agents = sorted({*agents, *(descendants(daemon.pid) if daemon.proc else [])})
        if daemon.proc is not None and daemon.proc.returncode is None:
            try:
                await daemon.stop(STOP_TIMEOUT)
            except TimeoutError:
                await daemon.kill()
        kill_pids(agents)


# -- report -------------------------------------------------------------------------------


def verdicts(levels: Sequence[Level], capped: str) -> list[Verdict]:
    top = max(levels, key=lambda lv: lv.clients)
    complete = top.held == top.clients and top.turns_completed == top.turns_expected
    out = [
        Verdict(
            f"{TARGET_SESSIONS} concurrent sessions held, all turns complete",
            top.clients >= TARGET_SESSIONS and complete,
            f"N={top.clients}: {top.held} held, {top.turns_completed}/{top.turns_expected} "
            f"turns, {top.turns_per_s:.0f} turns/s"
            + (f"; {capped}" if capped else "")
            + (f"; errors: {top.errors[:3]}" if top.errors else ""),
        )
    ]
    measured = [lv for lv in levels if lv.latency is not None]
    if measured:
        at = next((lv for lv in measured if lv.clients == TARGET_LATENCY_CLIENTS), measured[-1])
        assert at.latency is not None
        added = at.latency["added_ms"]
        out.append(
            Verdict(
                f"gateway adds < {TARGET_ADDED_MS:.0f} ms per event at "
                f"{TARGET_LATENCY_CLIENTS} sessions",
                at.clients == TARGET_LATENCY_CLIENTS and added["median"] < TARGET_ADDED_MS,
                f"N={at.clients}: {added['median']:+.3f} ms median of {added['n']} paired event "
                f"differences (p10 {added['p10']:+.3f}, p90 {added['p90']:+.3f})"
                + ("" if at.clients == TARGET_LATENCY_CLIENTS else "; not measured at 100")
                + f"; counted from the turn's first event instead: "
                f"{at.latency['relay_added_ms']['median']:+.3f} ms",
            )
        )
    else:
        out.append(
            Verdict(f"gateway adds < {TARGET_ADDED_MS:.0f} ms per event", False, "not measured")
        )
    out.append(
        Verdict(
            f"daemon RSS per live session < {TARGET_RSS_BYTES // 1000} KB",
            top.per_session_bytes < TARGET_RSS_BYTES,
            f"N={top.clients}: {top.per_session_bytes / 1000:.1f} KB "
            f"({top.rss0_kib / 1024:.1f} -> {top.rssn_kib / 1024:.1f} MiB; agents not counted, "
            f"one agent is {top.agent_rss_kib / 1024:.1f} MiB)",
        )
    )
    return out


def table(meta: dict[str, Any], levels: Sequence[Level], checks: Sequence[Verdict]) -> str:
    head = "{:>7} {:>6} {:>11} {:>8} {:>9} {:>10} {:>9} {:>9} {:>10} {:>12}"
    rows = [
        f"HotPlex gateway benchmark, {meta['date']}: Python {meta['python']}, "
        f"{meta['cpus']} CPUs, {meta['seconds']:.0f} s{', QUICK' if meta['quick'] else ''}",
        "",
        head.format(
            "clients",
            "held",
            "turns",
            "turns/s",
            "events/s",
            "turn p50ms",
            "p10",
            "p90",
            "first s",
            "RSS/sess KB",
        ),
    ]
    for lv in levels:
        t = lv.turn_ms
        rows.append(
            head.format(
                lv.clients,
                lv.held,
                f"{lv.turns_completed}/{lv.turns_expected}",
                f"{lv.turns_per_s:.0f}",
                f"{lv.events_per_s:.0f}",
                f"{t.median:.1f}" if t else "-",
                f"{t.p10:.1f}" if t else "-",
                f"{t.p90:.1f}" if t else "-",
                f"{lv.first_turns_s:.1f}",
                f"{lv.per_session_bytes / 1000:.1f}",
            )
        )
    rows += [
        "",
        "per-event latency from send (ms)   {:>7} {:>9} {:>9} {:>9}".format(
            "n", "median", "p10", "p90"
        ),
    ]
    for lv in levels:
        if lv.latency is None:
            continue
        for label, name in (
            ("gateway", "gateway_event_ms"),
            ("raw pipe (floor)", "raw_event_ms"),
            ("gateway - raw, paired", "added_ms"),
            ("same, from the 1st event", "relay_added_ms"),
        ):
            s = lv.latency[name]
            rows.append(
                f"N={lv.clients:<4} {label:<27} {s['n']:>7} {s['median']:>9.3f} "
                f"{s['p10']:>9.3f} {s['p90']:>9.3f}"
            )
    rows += ["", *(v.line() for v in checks)]
    return "\n".join(rows)


# -- main ---------------------------------------------------------------------------------


def cap_clients(clients: list[int]) -> tuple[list[int], str]:
    available = meminfo_kib("MemAvailable")
    limit = max(1, (available - MEMORY_MARGIN_KIB) // AGENT_BUDGET_KIB)
    if max(clients) <= limit:
        return clients, ""
    message = (
        f"capped to {limit} clients: MemAvailable {available / 1048576:.1f} GiB allows "
        f"{limit} fake agents at {AGENT_BUDGET_KIB // 1024} MiB each"
    )
    print(message, file=sys.stderr, flush=True)
    return sorted({min(n, limit) for n in clients}), message


async def run(clients: list[int], turns: int, pairs: int, quick: bool) -> dict[str, Any]:
    clients, capped = cap_clients(clients)
    meta: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "quick": quick,
        "clients": clients,
        "turns": turns,
        "pairs": pairs,
        "fake_slow_s": float(FAKE_SLOW),
        "capped": capped,
    }
    levels = []
    for n in clients:
        with tempfile.TemporaryDirectory(prefix="hotplex-bench-gw-") as tmp:
            levels.append(await run_level(Path(tmp), n, turns, pairs))
    meta["seconds"] = round(elapsed(), 1)
    checks = verdicts(levels, capped)
    print(table(meta, levels, checks), flush=True)
    return {
        "meta": meta,
        "levels": [asdict(lv) for lv in levels],
        "verdicts": [asdict(v) for v in checks],
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", help="comma-separated client counts (default 10,100,500)")
    parser.add_argument("--turns", type=int, help="turns per client after the first (default 5)")
    parser.add_argument("--pairs", type=int, help="gateway/raw latency pairs (default 100)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--quick", action="store_true", help="small samples (smoke test)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    default = "5,20" if args.quick else "10,100,500"
    clients = sorted({max(1, int(n)) for n in (args.clients or default).split(",")})
    turns = max(1, args.turns or (2 if args.quick else 5))
    pairs = args.pairs if args.pairs is not None else (10 if args.quick else 100)
    results = asyncio.run(run(clients, turns, pairs, args.quick))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    progress(f"done in {results['meta']['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
