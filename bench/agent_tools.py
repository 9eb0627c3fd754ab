"""Agent-tools benchmark: what serving HotPlex's agent tools costs each Claude Code agent.

With a plugin that registers one agent tool (``echo``), it starts ``--agents`` Claude Code
sessions through the public composition (``hotplex.runtime.Runtime`` with the core plugin and
that plugin), on the real pinned CLI against the fake Anthropic API, and measures for each:

- **cold first turn**: ``engine.execute`` on a new key to its ``done`` (spawn, the CLI's
  ``initialize`` including its MCP servers, one ``hi`` turn);
- **tool turn**: a further turn in which the agent calls ``mcp__hotplex__echo`` (allowed
  through ``provider.allowed_tools``, so no person is asked) and answers with its result;
- **RSS of the agent's process tree**: VmRSS summed over the CLI and every descendant, with
  every agent still alive and idle; and how many processes that tree has.

and, for OpenCode (one ``hotplex`` stdio MCP server per work directory), the helper as the
tree's own code would launch it: **helper start** (spawn to its answer to ``initialize``)
and **helper RSS** once it answered.

A/B in one run: ``--tree NAME=PYTHON`` names a Python whose ``hotplex`` is the code to
measure (a worktree's venv). Each tree is measured in a child process of its own, in
interleaved rounds (A, B, A, B, ...), so drift on a shared machine hits both alike. Run from
the repository root::

    .venv/bin/python bench/agent_tools.py --tree before=../main-venv/bin/python \\
        --tree after=.venv/bin/python [--rounds 3] [--agents 4] [--json out.json]

Medians with p10/p90 of all the rounds of a tree; progress on stderr, the table on stdout.
Exit status 2 when the pinned CLI is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from _report import BenchError, Stats, ms, progress

ROOT = Path(__file__).resolve().parent.parent
CLAUDE = ROOT / "node_modules" / ".bin" / "claude"
TURN_TIMEOUT = 90.0
TOOL_PROMPT = 'MCP: mcp__hotplex__echo {"text": "hi"}'


# -- the worker: one tree, one round ------------------------------------------------------


def tree_pids(root: int) -> list[int]:
    """``root`` and its descendants (bounded walk over /proc/<pid>/task/*/children)."""
    found = [root]
    todo = [root]
    while todo and len(found) < 10_000:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError, ValueError):
                for child in map(int, (task / "children").read_text().split()):
                    found.append(child)
                    todo.append(child)
    return found


def rss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@contextlib.asynccontextmanager
async def fake_api() -> AsyncIterator[str]:
    """``python -m hotplex.testing.fake_anthropic`` on a free port, in a process group of
    its own; yields its base URL."""
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
        async with asyncio.timeout(30):
            line = (await proc.stdout.readline()).decode().strip()
        if not line.startswith("listening on "):
            raise BenchError(f"the fake API did not start: {line!r}")
        yield line.removeprefix("listening on ")
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await proc.wait()


async def worker(agents: int) -> dict[str, Any]:
    import yaml

    from hotplex import hookimpl
    from hotplex.config import load_settings
    from hotplex.engine import ENGINE
    from hotplex.plugins import make_plugin_manager
    from hotplex.records import AgentToolSpec
    from hotplex.runtime import Runtime

    calls: list[str] = []

    async def echo(args: dict[str, Any], ctx: Any) -> str:
        calls.append(ctx.session_id)
        return f"ECHOED<{args.get('text')}>"

    class Tools:
        @hookimpl
        def hotplex_register_agent_tools(self) -> list[AgentToolSpec]:
            schema = {"type": "object", "properties": {"text": {"type": "string"}}}
            return [AgentToolSpec("echo", "Echo the text back", schema, echo)]

    out: dict[str, Any] = {"cold": [], "tool": [], "rss_kib": [], "processes": []}
    async with fake_api() as base_url:
        with tempfile.TemporaryDirectory(prefix="hp-bench-tools-") as tmp:
            raw = {
                "engine": {"data_dir": str(Path(tmp) / "data"), "max_sessions": agents + 1},
                "provider": {
                    "binary": str(CLAUDE),
                    "allowed_tools": ["mcp__hotplex__echo"],
                    "env": {"ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": "sk-test"},
                },
            }
            settings = load_settings(None, text=yaml.safe_dump(raw), environ={}).settings
            pm = make_plugin_manager(entry_points=False, environ={})
            pm.register(Tools(), "bench-tools")
            async with Runtime(settings, pm) as runtime:
                engine = runtime.ctx.services.get(ENGINE)
                pids = []
                for n in range(agents):
                    key = f"bench-{n}"
                    started = time.perf_counter()
                    turn = await engine.execute(key, "hi", user="bench")
                    events = await turn.collect(TURN_TIMEOUT)
                    out["cold"].append(time.perf_counter() - started)
                    if events[-1].data.get("status") != "ok":
                        raise BenchError(f"cold turn ended {events[-1].data}")
                    started = time.perf_counter()
                    turn = await engine.execute(key, TOOL_PROMPT, user="bench")
                    events = await turn.collect(TURN_TIMEOUT)
                    out["tool"].append(time.perf_counter() - started)
                    text = "".join(str(e.data.get("text", "")) for e in events)
                    if "ECHOED<hi>" not in text:
                        raise BenchError(f"the tool did not answer: {text[:200]!r}")
                    session = engine.get(engine.session_id(key))
                    if session is None or session.process is None or session.process.pid is None:
                        raise BenchError("no live agent after the turns")
                    pids.append(session.process.pid)
                for pid in pids:  # every agent alive and idle
                    tree = tree_pids(pid)
                    out["rss_kib"].append(sum(rss_kib(p) for p in tree))
                    out["processes"].append(len(tree))
    if len(calls) != agents:
        raise BenchError(f"{len(calls)} tool calls for {agents} agents")
    out["helper_start"], out["helper_rss_kib"] = helper_figures(agents)
    return out


def helper_figures(runs: int) -> tuple[list[float], list[int]]:
    """Start the tree's OpenCode helper ``runs`` times: seconds to its ``initialize``
    answer, and its VmRSS then."""
    import hotplex.agent_tools as tools

    socket = "/nonexistent/agent-tools.sock"  # initialize needs no bridge
    if hasattr(tools, "server_entry"):  # the helper that imports the hotplex package
        entry = tools.shared_server_entry(tools.server_entry(socket, "bench"))
    else:
        entry = tools.shared_server_entry(socket)
    init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})
    starts: list[float] = []
    rss: list[int] = []
    with tempfile.TemporaryDirectory(prefix="hp-bench-helper-") as cwd:
        for _ in range(runs):
            started = time.perf_counter()
            proc = subprocess.Popen(
                [entry["command"], *entry["args"]],
                cwd=cwd,
                text=True,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(init + "\n")
            proc.stdin.flush()
            if '"serverInfo"' not in proc.stdout.readline():
                raise BenchError("the helper did not answer initialize")
            starts.append(time.perf_counter() - started)
            rss.append(rss_kib(proc.pid))
            proc.stdin.close()
            proc.wait(10)
    return starts, rss


# -- the driver: trees in interleaved rounds ----------------------------------------------


def run_worker(python: str, agents: int) -> dict[str, Any]:
    proc = subprocess.run(
        [python, str(Path(__file__).resolve()), "--worker", "--agents", str(agents)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise BenchError(f"the worker of {python} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PYTHON")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not CLAUDE.exists():
        print(f"the pinned CLI is missing: {CLAUDE}", file=sys.stderr)
        return 2
    if args.worker:
        print(json.dumps(asyncio.run(worker(args.agents))))
        return 0
    trees = dict(t.split("=", 1) for t in args.tree) or {"this": sys.executable}
    keys = ("cold", "tool", "rss_kib", "processes", "helper_start", "helper_rss_kib")
    samples: dict[str, dict[str, list[float]]] = {name: {k: [] for k in keys} for name in trees}
    for round_no in range(args.rounds):
        order = list(trees) if round_no % 2 == 0 else list(reversed(trees))
        for name in order:
            progress(f"round {round_no + 1}/{args.rounds}: {name} ({args.agents} agents)")
            for key, values in run_worker(trees[name], args.agents).items():
                samples[name][key].extend(values)
    table: dict[str, dict[str, Any]] = {}
    print(f"{'tree':<10} {'figure':<28} {'n':>3} {'median':>9} {'p10':>9} {'p90':>9}")
    for name, figures in samples.items():
        rows = {
            "cold first turn (ms)": ms(figures["cold"]),
            "tool turn (ms)": ms(figures["tool"]),
            "RSS per agent (MiB)": Stats.of([k / 1024 for k in figures["rss_kib"]]),
            "processes per agent": Stats.of(figures["processes"]),
            "OpenCode helper start (ms)": ms(figures["helper_start"]),
            "OpenCode helper RSS (MiB)": Stats.of([k / 1024 for k in figures["helper_rss_kib"]]),
        }
        table[name] = {row: vars(stats) for row, stats in rows.items()}
        for row, s in rows.items():
            print(f"{name:<10} {row:<28} {s.n:>3} {s.median:>9.1f} {s.p10:>9.1f} {s.p90:>9.1f}")
    if args.json:
        args.json.write_text(json.dumps({"trees": trees, "figures": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
