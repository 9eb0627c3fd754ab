"""Engine benchmark: what a hot agent process buys, and what the engine itself costs.

Drives the real pinned Claude Code CLI (``node_modules/.bin/claude``) against the fake
Anthropic API (``hotplex.testing.fake_anthropic``, which answers ``echo: <text>`` at once),
so every figure is the agent's and the engine's own time, never a model's. Everything runs
in one process and one run, so the figures are comparable with each other:

(a) cold vs hot turn: ``engine.execute`` on a brand-new key to its ``done`` (spawn,
    ``initialize``, first turn; no prewarm) against a further turn on the same session.
(b) engine overhead: hot turns through the engine against the same hot turn on a raw pipe
    (the same CLI command line, env and kind of cwd, the same ``initialize``, then one
    ``user`` line per turn, read until the ``result`` line), in interleaved pairs whose
    order alternates, in blocks of fresh agent pairs; reported as the median of the paired
    differences (with a bootstrap 95% CI), plus this process's CPU time per turn and its
    own path around the CLI (asking for the turn -> ``user`` line written, plus ``result``
    line off the pipe -> end seen; the engine's pipe is timestamped by wrapping its
    AgentSubprocess's methods), which the CLI's own jitter does not blur.
(c) prewarm: with ``engine.prewarm: 1``, wait for the spare, then time a new
    conversation's first turn; compared with (a)'s cold and hot turns and with the first
    turn of a freshly initialized CLI on a raw pipe (the floor for a first turn).
(d) memory: the engine's own RSS (this process's VmRSS) per live session, with N real CLIs
    and with N in-process ``FakeProvider`` agents; the CLIs' RSS per process for information.

The fake API runs as a child process, as a real API would be remote: its request log stays
out of (d) and its HTTP work off the engine's event loop. Medians, with p10/p90, use
``time.perf_counter``. Progress goes to stderr, the table and a verdict per target to stdout.

Run from the repository root::

    .venv/bin/python bench/engine.py [--pairs 300] [--json out.json] [--quick]

``--quick`` shrinks every sample count (the smoke test uses it); ``make bench`` runs the
full benchmark. Exit status 0 even when a target is missed (the table says so); 2 when the
pinned CLI is not installed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import random
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from _report import BenchError, Stats, Verdict, elapsed, ms, progress

from hotplex.agent_process import group_members
from hotplex.binaries import binary_version, find_binary
from hotplex.config import Settings, load_settings
from hotplex.engine.engine import Engine
from hotplex.events import AgentEvent
from hotplex.providers.claude_code import (
    PRE_TOOL_HOOK,
    ClaudeAgentProcess,
    ClaudeCodeProvider,
)
from hotplex.testing.fakes import FakeProvider
from hotplex.types import AgentStartSpec

TURN_TIMEOUT = 60.0  # one turn, cold or hot
START_TIMEOUT = 60.0  # the fake API, a raw agent's initialize, a prewarmed spare
STOP_TIMEOUT = 10.0
SETTLE = 0.1  # pause after stopping a session, so its exit does not overlap the next sample
READ_LIMIT = 16 * 1024 * 1024  # the raw pipe's line limit (protocols.md §4.3)

TARGET_COLD_HOT = 15.0  # hot at least 15x faster than cold
TARGET_OVERHEAD_MS = 1.0  # engine adds under 1 ms (median of paired differences)
TARGET_PREWARM_HOT = 1.5  # prewarmed first turn within 1.5x of a hot turn


@dataclass(frozen=True)
class Plan:
    cold: int  # (a) cold samples, each a fresh key
    hot_per_cold: int  # (a) hot samples after each cold one
    warmup: int  # (b) unrecorded turns per side before each block of pairs
    pairs: int  # (b) interleaved engine/raw pairs
    block: int  # (b) pairs per pair of fresh agents (spreads per-process bias)
    prewarm: int  # (c) prewarmed first turns
    real_sessions: int  # (d) live real CLIs
    fake_sessions: int  # (d) live FakeProvider agents


FULL = Plan(
    cold=12,
    hot_per_cold=5,
    warmup=5,
    pairs=300,
    block=50,
    prewarm=10,
    real_sessions=20,
    fake_sessions=1000,
)
QUICK = Plan(
    cold=3,
    hot_per_cold=3,
    warmup=2,
    pairs=10,
    block=5,
    prewarm=3,
    real_sessions=3,
    fake_sessions=100,
)


# -- the fake API, settings ---------------------------------------------------------------


@contextlib.asynccontextmanager
async def fake_api() -> AsyncIterator[str]:
    """``python -m hotplex.testing.fake_anthropic`` on a free port; yields its base URL."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hotplex.testing.fake_anthropic",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(START_TIMEOUT):
            line = (await proc.stdout.readline()).decode().strip()
        if not line.startswith("listening on "):
            raise BenchError(f"the fake API did not start: {line!r}")
        yield line.removeprefix("listening on ")
    finally:
        await _kill(proc)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL a child's process group and reap it (bounded)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(STOP_TIMEOUT):
            await proc.wait()


SettingsFactory = Callable[..., Settings]


def settings_factory(root: Path, api_url: str, binary: Path) -> SettingsFactory:
    """Settings as the integration tests build them; ``phase`` picks the data dir."""

    def make(phase: str, **engine: Any) -> Settings:
        raw = {
            "engine": {"data_dir": str(root / phase), **engine},
            "provider": {
                "binary": str(binary),
                "env": {"ANTHROPIC_BASE_URL": api_url, "ANTHROPIC_API_KEY": "sk-test"},
            },
        }
        return load_settings(None, text=yaml.safe_dump(raw), environ={}).settings

    return make


def claude_engine(settings: Settings) -> Engine:
    return Engine(settings, ClaudeCodeProvider(settings.provider))


# -- one turn, timed ----------------------------------------------------------------------


def _texts(events: Sequence[AgentEvent]) -> str:
    return " ".join(str(e.data["text"]) for e in events if e.type == "text")


@dataclass(frozen=True)
class Timing:
    start: float  # perf_counter when the turn was asked for
    end: float  # perf_counter when its reader saw it end (``done`` / ``result``)
    cpu: float  # CPU seconds this process spent on the whole turn

    @property
    def wall(self) -> float:
        return self.end - self.start


async def engine_turn(engine: Engine, key: str, prompt: str) -> tuple[Timing, list[AgentEvent]]:
    """Time from ``execute`` to the ``done`` event; the turn's events."""
    done_at: float | None = None
    events: list[AgentEvent] = []
    async with asyncio.timeout(TURN_TIMEOUT):
        cpu = time.process_time()
        start = time.perf_counter()
        turn = await engine.execute(key, prompt)
        async for event in turn:
            if event.type == "done":
                done_at = time.perf_counter()
            events.append(event)
        cpu = time.process_time() - cpu
    if done_at is None or events[-1].data.get("status") != "ok":
        raise BenchError(f"turn on {key!r} did not end ok: {[e.to_json() for e in events]}")
    if _texts(events) != f"echo: {prompt}":
        raise BenchError(f"unexpected answer on {key!r}: {_texts(events)!r}")
    return Timing(start, done_at, cpu), events


def _started_fresh(events: Sequence[AgentEvent]) -> bool:
    return bool(events) and events[0].type == "session" and events[0].data == {"state": "started"}


async def stop(engine: Engine, key: str) -> None:
    async with asyncio.timeout(STOP_TIMEOUT):
        await engine.stop_session(engine.session_id(key))
    await asyncio.sleep(SETTLE)


# -- where a turn enters and leaves the agent's pipe -------------------------------------


RESULT_LINE = b'{"type":"result"'


@dataclass
class PipeMarks:
    """When the last ``user`` line was written and the last ``result`` line came off the
    pipe. ``own_path`` is the reader's own time around the CLI: from asking for the turn to
    writing the line, plus from the ``result`` line's arrival to seeing the turn end."""

    wrote_at: float = 0.0
    read_at: float = 0.0

    def own_path(self, timing: Timing) -> float:
        return (self.wrote_at - timing.start) + (timing.end - self.read_at)


def probe_session(engine: Engine, key: str) -> PipeMarks:
    """Instrument one engine session's agent pipe, wrapping methods of its AgentSubprocess
    instance in place (no engine code changes): mark ``user`` lines written and ``result``
    lines as they are split off the stdout chunks, before any parsing."""
    session = engine.get(engine.session_id(key))
    process = session.process if session is not None else None
    if not isinstance(process, ClaudeAgentProcess):
        raise BenchError(f"{key}: no live claude agent to probe")
    sub = process.subprocess
    write, put_line = sub.write_message, sub._lines.put_nowait
    marks = PipeMarks()

    async def write_message(message: Mapping[str, Any], timeout: float = 10.0) -> None:
        if message.get("type") == "user":
            marks.wrote_at = time.perf_counter()
        await write(message, timeout)

    def put_nowait(line: bytes | None) -> None:
        if line is not None and line.startswith(RESULT_LINE):
            marks.read_at = time.perf_counter()
        put_line(line)

    sub.write_message = write_message  # type: ignore[method-assign]
    sub._lines.put_nowait = put_nowait  # type: ignore[method-assign,assignment]
    return marks


# -- the raw pipe (the floor) -------------------------------------------------------------


class RawAgent:
    """The same CLI, driven by a bare script: no engine, no normalizer, no event stamping."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.marks = PipeMarks()

    @classmethod
    async def start(cls, engine: Engine, provider: ClaudeCodeProvider) -> RawAgent:
        """Spawn as ``ClaudeCodeProvider.start`` does (argv, env, cwd kind), then initialize."""
        session_id = str(uuid.uuid4())
        spec = AgentStartSpec(
            session_id=session_id,
            provider_session_id=session_id,
            resume=False,
            work_dir=engine.workdirs.root / session_id,
            state_dir=engine.workdirs.state_dir(session_id),
            env=engine.launcher.environment(),
        )
        spec.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        spec.work_dir.mkdir(parents=True, exist_ok=True)
        with (spec.state_dir / "raw-stderr.log").open("wb") as stderr:
            proc = await asyncio.create_subprocess_exec(
                *provider.argv(spec),
                cwd=spec.work_dir,
                env={**spec.env, "CLAUDE_CONFIG_DIR": str(spec.state_dir)},
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                limit=READ_LIMIT,
                start_new_session=True,
            )
        agent = cls(proc)
        try:
            await agent.initialize()
        except BaseException:
            await agent.kill()
            raise
        return agent

    async def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.marks.wrote_at = time.perf_counter()
        self.proc.stdin.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        await self.proc.stdin.drain()

    async def _read_until(self, kind: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            arrived = time.perf_counter()
            message: dict[str, Any] = json.loads(line)
            if message.get("type") == kind:
                self.marks.read_at = arrived
                return message
        raise BenchError(f"raw agent {self.pid} exited before a {kind!r} line")

    async def initialize(self) -> None:
        hooks = {"PreToolUse": [{"matcher": None, "hookCallbackIds": [PRE_TOOL_HOOK]}]}
        await self._send(
            {
                "type": "control_request",
                "request_id": "raw_1",
                "request": {"subtype": "initialize", "hooks": hooks},
            }
        )
        async with asyncio.timeout(START_TIMEOUT):
            await self._read_until("control_response")

    async def turn(self, prompt: str) -> Timing:
        """Time from writing the ``user`` line to reading the ``result`` line."""
        async with asyncio.timeout(TURN_TIMEOUT):
            cpu = time.process_time()
            start = time.perf_counter()
            await self._send(
                {
                    "type": "user",
                    "message": {"role": "user", "content": [{"type": "text", "text": prompt}]},
                    "parent_tool_use_id": None,
                    "session_id": "default",
                }
            )
            result = await self._read_until("result")
            end = time.perf_counter()
            cpu = time.process_time() - cpu
        if result.get("is_error") or result.get("result") != f"echo: {prompt}":
            raise BenchError(f"raw turn did not end ok: {result}")
        return Timing(start, end, cpu)

    async def kill(self) -> None:
        await _kill(self.proc)


# -- (a) cold vs hot ----------------------------------------------------------------------


async def measure_cold_hot(engine: Engine, plan: Plan) -> tuple[list[float], list[float]]:
    cold: list[float] = []
    hot: list[float] = []
    for i in range(plan.cold):
        key = f"cold-{i:03d}"
        timing, events = await engine_turn(engine, key, f"cold {i:05d}")
        if not _started_fresh(events):
            raise BenchError(f"{key}: the first turn did not start a new agent")
        cold.append(timing.wall)
        for j in range(plan.hot_per_cold):
            timing, _ = await engine_turn(engine, key, f"hot {i:03d}.{j:02d}")
            hot.append(timing.wall)
        await stop(engine, key)
        progress(
            f"(a) cold {i + 1}/{plan.cold}: {cold[-1] * 1000:.0f} ms, "
            f"hot median so far {statistics.median(hot) * 1000:.1f} ms"
        )
    return cold, hot


# -- (b) engine vs raw pipe ---------------------------------------------------------------


@dataclass
class Pairs:
    engine: list[Timing] = field(default_factory=list)
    raw: list[Timing] = field(default_factory=list)
    engine_path: list[float] = field(default_factory=list)  # PipeMarks.own_path
    raw_path: list[float] = field(default_factory=list)

    def diffs(self) -> list[float]:
        return [e.wall - r.wall for e, r in zip(self.engine, self.raw, strict=True)]


async def measure_overhead(engine: Engine, provider: ClaudeCodeProvider, plan: Plan) -> Pairs:
    """``plan.pairs`` pairs in blocks, each block on a fresh engine session and a fresh raw
    agent (spawned in alternating order), so no single process's quirks decide the result."""
    pairs = Pairs()
    block = 0
    while len(pairs.engine) < plan.pairs:
        size = min(plan.block, plan.pairs - len(pairs.engine))
        await measure_block(engine, provider, plan, block, size, pairs)
        block += 1
        progress(
            f"(b) {len(pairs.engine)}/{plan.pairs} pairs: median engine - raw "
            f"{statistics.median(pairs.diffs()) * 1000:+.2f} ms"
        )
    return pairs


async def measure_block(
    engine: Engine,
    provider: ClaudeCodeProvider,
    plan: Plan,
    block: int,
    size: int,
    pairs: Pairs,
) -> None:
    key = f"pair-{block:03d}"
    if block % 2:  # the engine's agent spawns first in odd blocks, the raw one in even ones
        await engine_turn(engine, key, f"spawn {block:03d}")
    raw = await RawAgent.start(engine, provider)
    try:
        for i in range(plan.warmup):
            await engine_turn(engine, key, f"warm {block:03d}.{i:02d} e")
            await raw.turn(f"warm {block:03d}.{i:02d} r")
        marks = probe_session(engine, key)
        for _ in range(size):
            n = len(pairs.engine)
            engine_prompt, raw_prompt = f"pair {n:05d} e", f"pair {n:05d} r"
            if n % 2 == 0:
                on_engine, _ = await engine_turn(engine, key, engine_prompt)
                on_raw = await raw.turn(raw_prompt)
            else:
                on_raw = await raw.turn(raw_prompt)
                on_engine, _ = await engine_turn(engine, key, engine_prompt)
            pairs.engine.append(on_engine)
            pairs.raw.append(on_raw)
            pairs.engine_path.append(marks.own_path(on_engine))
            pairs.raw_path.append(raw.marks.own_path(on_raw))
    finally:
        await raw.kill()
    await stop(engine, key)


def median_ci(
    values: Sequence[float], level: float = 0.95, resamples: int = 2000
) -> tuple[float, float]:
    """Bootstrap confidence interval of the median (fixed seed, so runs are repeatable)."""
    rng = random.Random(0)
    medians = sorted(
        statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples)
    )
    tail = int(resamples * (1 - level) / 2)
    return medians[tail], medians[-tail - 1]


async def measure_latency(
    make: SettingsFactory, plan: Plan
) -> tuple[list[float], list[float], Pairs]:
    """(a), then (b) on the same engine."""
    settings = make("latency", max_sessions=8)
    provider = ClaudeCodeProvider(settings.provider)
    async with Engine(settings, provider) as engine:
        cold, hot = await measure_cold_hot(engine, plan)
        pairs = await measure_overhead(engine, provider, plan)
    return cold, hot, pairs


# -- (c) prewarm --------------------------------------------------------------------------


async def wait_for_spare(engine: Engine) -> None:
    async with asyncio.timeout(START_TIMEOUT):
        # Spares has no event to wait on; poll its count (bounded by the timeout)
        while engine.spares.ready < 1:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def raw_first_turn(engine: Engine, provider: ClaudeCodeProvider, prompt: str) -> float:
    """The first turn of a freshly initialized CLI on a raw pipe: the floor for (c)."""
    raw = await RawAgent.start(engine, provider)
    try:
        return (await raw.turn(prompt)).wall
    finally:
        await raw.kill()


async def measure_prewarm(make: SettingsFactory, plan: Plan) -> tuple[list[float], list[float]]:
    """Prewarmed first turns through the engine, each followed (once the refill is ready,
    so no spawn overlaps it) by the first turn of a fresh CLI on a raw pipe."""
    prewarmed: list[float] = []
    raw_first: list[float] = []
    settings = make("prewarm", prewarm=1, max_sessions=4)
    provider = ClaudeCodeProvider(settings.provider)
    async with Engine(settings, provider) as engine:
        for i in range(plan.prewarm):
            await wait_for_spare(engine)
            key = f"prewarmed-{i:03d}"
            timing, events = await engine_turn(engine, key, f"new {i:05d} e")
            if not _started_fresh(events):
                raise BenchError(f"{key}: the first turn did not take the spare")
            prewarmed.append(timing.wall)
            await stop(engine, key)
            await wait_for_spare(engine)
            raw_first.append(await raw_first_turn(engine, provider, f"new {i:05d} r"))
            progress(
                f"(c) first turn {i + 1}/{plan.prewarm}: prewarmed "
                f"{prewarmed[-1] * 1000:.1f} ms, fresh raw pipe {raw_first[-1] * 1000:.1f} ms"
            )
    return prewarmed, raw_first


# -- (d) memory ---------------------------------------------------------------------------


def rss_kib(pid: int | str = "self") -> int:
    """VmRSS of a process in KiB (0 when it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def settled_rss() -> int:
    gc.collect()
    return rss_kib()


@dataclass(frozen=True)
class Memory:
    provider: str
    sessions: int
    rss0_kib: int
    rssn_kib: int
    per_session_kib: float
    agent_rss_kib: Stats | None  # per agent process group (real CLI only)


async def measure_memory(
    engine: Engine, n: int, label: str, *, warmup: int, agents: bool
) -> Memory:
    """RSS of this process before and after ``n`` more live sessions (``warmup`` sessions
    first, so lazily built code paths and caches are in the baseline)."""
    for i in range(warmup):
        await engine_turn(engine, f"mem-warm-{i:04d}", f"warm {i:05d}")
    rss0 = settled_rss()
    for i in range(n):
        await engine_turn(engine, f"mem-{i:04d}", f"mem {i:05d}")
        if (i + 1) % max(1, n // 5) == 0:
            progress(f"(d) {label}: {i + 1}/{n} live sessions, RSS {rss_kib() / 1024:.1f} MiB")
    rssn = settled_rss()
    agent_rss = None
    if agents:
        pids = [s.pid for s in engine.sessions() if s.pid is not None]
        agent_rss = Stats.of([float(sum(rss_kib(p) for p in group_members(pid))) for pid in pids])
    return Memory(label, n, rss0, rssn, (rssn - rss0) / n, agent_rss)


async def measure_memory_fake(make: SettingsFactory, plan: Plan) -> Memory:
    settings = make("memory-fake", max_sessions=plan.fake_sessions + 100)
    async with Engine(settings, FakeProvider()) as engine:
        return await measure_memory(
            engine, plan.fake_sessions, "FakeProvider", warmup=20, agents=False
        )


async def measure_memory_real(make: SettingsFactory, plan: Plan) -> Memory:
    settings = make("memory-real", max_sessions=plan.real_sessions + 4)
    async with claude_engine(settings) as engine:
        return await measure_memory(engine, plan.real_sessions, "real CLI", warmup=1, agents=True)


# -- report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Results:
    meta: dict[str, Any]
    cold_ms: Stats  # (a)
    hot_ms: Stats
    engine_ms: Stats  # (b)
    raw_ms: Stats
    overhead_ms: Stats  # paired differences engine - raw
    overhead_ci95_ms: tuple[float, float]
    engine_cpu_ms: Stats
    raw_cpu_ms: Stats
    engine_path_ms: Stats
    raw_path_ms: Stats
    prewarm_ms: Stats  # (c)
    raw_first_ms: Stats
    memory_real: Memory  # (d)
    memory_fake: Memory

    @property
    def ratios(self) -> dict[str, float]:
        return {
            "cold_hot": self.cold_ms.median / self.hot_ms.median,
            "prewarm_hot": self.prewarm_ms.median / self.hot_ms.median,
            "prewarm_cold": self.prewarm_ms.median / self.cold_ms.median,
            "prewarm_raw_first": self.prewarm_ms.median / self.raw_first_ms.median,
        }

    def verdicts(self) -> list[Verdict]:
        ratios = self.ratios
        low, high = self.overhead_ci95_ms
        return [
            Verdict(
                f"hot turn >= {TARGET_COLD_HOT:.0f}x faster than cold",
                ratios["cold_hot"] >= TARGET_COLD_HOT,
                f"{ratios['cold_hot']:.1f}x (cold {self.cold_ms.median:.1f} ms, "
                f"hot {self.hot_ms.median:.2f} ms)",
            ),
            Verdict(
                f"engine adds < {TARGET_OVERHEAD_MS:.0f} ms to a hot turn",
                self.overhead_ms.median < TARGET_OVERHEAD_MS,
                f"{self.overhead_ms.median:+.2f} ms median of {self.overhead_ms.n} paired "
                f"differences (95% CI {low:+.2f}..{high:+.2f}; p10 {self.overhead_ms.p10:+.2f}, "
                f"p90 {self.overhead_ms.p90:+.2f}; engine {self.engine_ms.median:.2f} ms, "
                f"raw {self.raw_ms.median:.2f} ms); own path around the CLI "
                f"{self.engine_path_ms.median:.2f} vs {self.raw_path_ms.median:.2f} ms"
                + (
                    "; the CI straddles the target: too noisy to tell"
                    if low < TARGET_OVERHEAD_MS < high
                    else ""
                ),
            ),
            Verdict(
                f"prewarmed first turn within {TARGET_PREWARM_HOT}x of a hot turn",
                ratios["prewarm_hot"] <= TARGET_PREWARM_HOT,
                f"{ratios['prewarm_hot']:.2f}x (prewarmed {self.prewarm_ms.median:.2f} ms, "
                f"hot {self.hot_ms.median:.2f} ms; a fresh CLI's first turn on a raw pipe "
                f"{self.raw_first_ms.median:.2f} ms)",
            ),
        ]

    def to_json(self) -> dict[str, Any]:
        stats = {
            name: asdict(value) for name, value in vars(self).items() if isinstance(value, Stats)
        }
        return {
            "meta": self.meta,
            **stats,
            "overhead_ci95_ms": list(self.overhead_ci95_ms),
            "ratios": self.ratios,
            "memory": {"real": asdict(self.memory_real), "fake": asdict(self.memory_fake)},
            "verdicts": [asdict(v) for v in self.verdicts()],
        }

    def table(self) -> str:
        return "\n".join(
            [
                f"HotPlex engine benchmark, {self.meta['date']}: claude {self.meta['claude']}, "
                f"Python {self.meta['python']}, {self.meta['cpus']} CPUs, "
                f"{self.meta['seconds']:.0f} s{', QUICK' if self.meta['quick'] else ''}",
                "",
                *self._latency_rows(),
                "",
                *(f"{label:<46} {value:>14.2f}x" for label, value in self._ratio_rows()),
                "",
                *self._memory_rows(),
                "",
                *(v.line() for v in self.verdicts()),
            ]
        )

    def _latency_rows(self) -> list[str]:
        row = "{:<46} {:>5} {:>9} {:>9} {:>9}"
        rows = [
            ("(a) cold first turn (spawn+init+turn)", self.cold_ms),
            ("(a) hot turn", self.hot_ms),
            ("(b) hot turn via engine", self.engine_ms),
            ("(b) hot turn on a raw pipe (floor)", self.raw_ms),
            ("(b) engine - raw, paired differences", self.overhead_ms),
            ("(b) daemon CPU per hot turn, engine", self.engine_cpu_ms),
            ("(b) daemon CPU per hot turn, raw pipe", self.raw_cpu_ms),
            ("(b) own path around the CLI, engine", self.engine_path_ms),
            ("(b) own path around the CLI, raw pipe", self.raw_path_ms),
            ("(c) prewarmed first turn", self.prewarm_ms),
            ("(c) fresh CLI's first turn, raw pipe (floor)", self.raw_first_ms),
        ]
        return [
            row.format("milliseconds", "n", "median", "p10", "p90"),
            *(
                row.format(label, s.n, f"{s.median:.2f}", f"{s.p10:.2f}", f"{s.p90:.2f}")
                for label, s in rows
            ),
        ]

    def _ratio_rows(self) -> list[tuple[str, float]]:
        ratios = self.ratios
        return [
            ("(a) cold / hot", ratios["cold_hot"]),
            ("(c) prewarmed / hot", ratios["prewarm_hot"]),
            ("(c) prewarmed / cold", ratios["prewarm_cold"]),
            ("(c) prewarmed / fresh raw first turn", ratios["prewarm_raw_first"]),
        ]

    def _memory_rows(self) -> list[str]:
        rows = [
            f"(d) engine RSS per live session, {m.provider} (N={m.sessions}): "
            f"{m.per_session_kib:.1f} KiB ({m.rss0_kib / 1024:.1f} -> {m.rssn_kib / 1024:.1f} MiB)"
            for m in (self.memory_real, self.memory_fake)
        ]
        agents = self.memory_real.agent_rss_kib
        if agents is not None:
            rows.append(
                f"(d) agent RSS per CLI process group (N={agents.n}): median "
                f"{agents.median / 1024:.0f} MiB (p10 {agents.p10 / 1024:.0f}, "
                f"p90 {agents.p90 / 1024:.0f})"
            )
        return rows


def metadata(binary: Path, plan: Plan, quick: bool) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "claude": binary_version(binary) or "unknown",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "quick": quick,
        "plan": asdict(plan),
    }


# -- main ---------------------------------------------------------------------------------


async def run(binary: Path, plan: Plan, quick: bool) -> Results:
    meta = metadata(binary, plan, quick)
    with tempfile.TemporaryDirectory(prefix="hotplex-bench-") as tmp:
        async with fake_api() as api_url:
            progress(f"fake API at {api_url}; claude at {binary}")
            make = settings_factory(Path(tmp), api_url, binary)
            # memory first: RSS freed by earlier phases would be reused and hide growth
            progress(f"(d) engine RSS with {plan.real_sessions} real CLI sessions")
            memory_real = await measure_memory_real(make, plan)
            progress(f"(d) engine RSS with {plan.fake_sessions} FakeProvider sessions")
            memory_fake = await measure_memory_fake(make, plan)
            progress(
                f"(a) {plan.cold} cold turns, {plan.hot_per_cold} hot turns after each; "
                f"then (b) {plan.pairs} engine/raw pairs"
            )
            cold, hot, pairs = await measure_latency(make, plan)
            progress(f"(c) {plan.prewarm} prewarmed first turns")
            prewarmed, raw_first = await measure_prewarm(make, plan)
    meta["seconds"] = round(elapsed(), 1)
    diffs = pairs.diffs()
    low, high = median_ci(diffs)
    return Results(
        meta=meta,
        cold_ms=ms(cold),
        hot_ms=ms(hot),
        engine_ms=ms([t.wall for t in pairs.engine]),
        raw_ms=ms([t.wall for t in pairs.raw]),
        overhead_ms=ms(diffs),
        overhead_ci95_ms=(low * 1000.0, high * 1000.0),
        engine_cpu_ms=ms([t.cpu for t in pairs.engine]),
        raw_cpu_ms=ms([t.cpu for t in pairs.raw]),
        engine_path_ms=ms(pairs.engine_path),
        raw_path_ms=ms(pairs.raw_path),
        prewarm_ms=ms(prewarmed),
        raw_first_ms=ms(raw_first),
        memory_real=memory_real,
        memory_fake=memory_fake,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, help="engine/raw pairs for (b) (default 300)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--quick", action="store_true", help="small samples (smoke test)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.pairs is not None:
        plan = Plan(**{**asdict(plan), "pairs": max(1, args.pairs)})
    binary = find_binary("claude")
    if binary is None:
        print("the claude CLI is not installed; run `make setup`", file=sys.stderr)
        return 2
    results = asyncio.run(run(binary, plan, args.quick))
    print(results.table(), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results.to_json(), indent=2) + "\n")
    progress(f"done in {results.meta['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
