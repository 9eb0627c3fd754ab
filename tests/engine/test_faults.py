"""Process faults (reliability rows 43-56) with the fake agent CLI driven through the real
Claude Code provider and the engine."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from hotplex.agent_process import group_members
from hotplex.config import ProviderSettings
from hotplex.engine.engine import Engine
from hotplex.errors import ProtocolError
from hotplex.providers.claude_code import ClaudeAgentProcess, ClaudeCodeProvider
from hotplex.testing.fake_agent import write_wrapper
from hotplex.types import AgentStartSpec, ToolDecision, ToolRequest

Settings = Callable[..., Any]


def zombies_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] == "Z" and int(fields[1]) == pid:
                found.append(int(entry))
    return found


async def allow_all(request: ToolRequest) -> ToolDecision:
    return ToolDecision("allow" if request.stage == "permission" else "defer")


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start the fake agent through the provider: ``await agent("--fake-fork", "3")``."""
    started: list[ClaudeAgentProcess] = []

    async def start(*switches: str, env: dict[str, str] | None = None) -> ClaudeAgentProcess:
        binary = write_wrapper(tmp_path / f"bin{len(started)}", *switches)
        provider = ClaudeCodeProvider(ProviderSettings(), binary=binary, init_timeout=10)
        spec = AgentStartSpec(
            session_id="s",
            provider_session_id="0e6ad7b2-7c1e-4a5e-9b43-1c2d3e4f5a6b",
            resume=False,
            work_dir=tmp_path / "work",
            state_dir=tmp_path / "state",
            env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **(env or {})},
        )
        process = await provider.start(spec, allow_all)
        started.append(process)
        return process

    yield start
    for process in started:
        await process.close(0.5)


async def run_turn(process: ClaudeAgentProcess, prompt: str, timeout: float = 10) -> list[Any]:
    async with asyncio.timeout(timeout):
        return [event async for event in process.turn(prompt)]


async def test_stop_leaves_no_survivor_in_the_group(agent: Any, tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    process = await agent("--fake-fork", "3", "--fake-pid-file", str(pid_file))
    pids = [int(p) for p in pid_file.read_text().split()]
    assert len(pids) == 4 and set(pids) <= set(group_members(process.pid))
    await process.close(0.5)
    assert group_members(process.pid) == []
    assert zombies_of(os.getpid()) == []


async def test_sigterm_ignored_is_killed_after_grace(agent: Any) -> None:
    process = await agent("--fake-ignore-sigterm", "--fake-fork", "2")
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await process.subprocess.stop(0.3) == -signal.SIGKILL
    assert group_members(process.pid) == []
    assert loop.time() - start < 5


async def test_grandchild_holding_stdout_does_not_hang(agent: Any, tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    process = await agent("--fake-leak-pipe", "--fake-pid-file", str(pid_file))
    events = await run_turn(process, "hello")
    assert events[-1].data["status"] == "ok"
    # the fake exits after this turn while its child keeps stdout open
    assert await process.subprocess.wait(5) == 0
    events = await run_turn(process, "again", timeout=10)
    assert events[-2].type == "error" and events[-2].data["code"] == "agent_crashed"
    await process.close(0.5)
    assert group_members(process.pid) == []


async def test_five_megabyte_line_is_parsed(agent: Any) -> None:
    process = await agent("--fake-big-line", str(5 * 1024 * 1024))
    events = await run_turn(process, "big")
    texts = [e.data["text"] for e in events if e.type == "text"]
    assert max(len(t) for t in texts) == 5 * 1024 * 1024
    assert events[-1].data["status"] == "ok"
    await process.close(0.5)


async def test_stderr_flood_does_not_deadlock(agent: Any) -> None:
    process = await agent("--fake-stderr-flood", str(20 * 1024 * 1024))
    events = await run_turn(process, "flood", timeout=20)
    assert events[-1].data["status"] == "ok"
    assert len(process.subprocess.stderr_tail()) <= 2000
    await process.close(0.5)


async def test_crash_mid_turn_reports_stderr_tail(agent: Any) -> None:
    process = await agent("--fake-crash-after", "1")
    events = await run_turn(process, "boom")
    error = next(e for e in events if e.type == "error")
    assert error.data["code"] == "agent_crashed" and error.data["retryable"]
    assert "code 3" in error.data["message"]
    assert "fake agent: simulated crash" in error.data["message"]
    assert events[-1].data == {"status": "error", "duration_ms": 0}
    await process.close(0.5)


async def test_invalid_stdin_lines_are_refused_before_writing(agent: Any) -> None:
    process = await agent()
    with pytest.raises(ProtocolError):
        await process._write({"type": "user"})
    with pytest.raises(ProtocolError):
        await process._write({"type": "bogus"})
    assert (await run_turn(process, "still alive"))[-1].data["status"] == "ok"
    await process.close(0.5)


async def test_cancelled_close_still_kills_and_reaps(agent: Any) -> None:
    process = await agent("--fake-hang", "--fake-ignore-sigterm", "--fake-fork", "2")
    consumer = asyncio.create_task(run_turn(process, "hang"))
    task = asyncio.create_task(process.close(0.3))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(process.close(), 10)  # the same close, still running
    assert group_members(process.pid) == []
    await asyncio.wait_for(consumer, 10)
    assert zombies_of(os.getpid()) == []


async def test_cancelled_turn_task_leaves_nothing_after_close(agent: Any) -> None:
    process = await agent("--fake-hang")

    async def consume() -> None:
        async for _ in process.turn("hang"):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await process.close(0.5)
    assert group_members(process.pid) == []


async def test_secrets_never_reach_the_agent(
    make_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump = tmp_path / "env.json"
    binary = write_wrapper(tmp_path / "bin", "--fake-dump-env", str(dump))
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-parent-secret")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@h/db")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-passes")
    monkeypatch.setenv("ANTHROPIC_EXTRA", "adm1n-token-value")
    settings = make_settings(
        extra={
            "provider": {"binary": str(binary)},
            "server": {"admin_token": "adm1n-token-value"},
        }
    )
    async with Engine(settings, ClaudeCodeProvider(settings.provider)) as engine:
        events = await (await engine.execute("k", "hi")).collect(10)
    assert events[-1].data["status"] == "ok"
    env = json.loads(dump.read_text())
    assert env["ANTHROPIC_API_KEY"] == "sk-ant-passes"
    for name in ("SLACK_BOT_TOKEN", "DATABASE_URL", "ANTHROPIC_EXTRA"):
        assert name not in env
    assert "adm1n-token-value" not in json.dumps(env)
    assert env["CLAUDE_CONFIG_DIR"].startswith(str(settings.engine.data_dir / "agents"))


async def test_engine_respawns_with_resume_after_a_crash(
    make_settings: Settings, tmp_path: Path
) -> None:
    binary = write_wrapper(tmp_path / "bin", "--fake-crash-after", "2")
    settings = make_settings(extra={"provider": {"binary": str(binary)}})
    async with Engine(settings, ClaudeCodeProvider(settings.provider)) as engine:
        first = await (await engine.execute("k", "remember PLUM")).collect(10)
        crashed = await (await engine.execute("k", "this one crashes")).collect(10)
        again = await (await engine.execute("k", "what did I say first")).collect(10)
    assert first[-1].data["status"] == "ok"
    assert crashed[-2].data["code"] == "agent_crashed" and crashed[-1].data["status"] == "error"
    assert again[0].data == {"state": "resumed"}
    assert any(e.type == "text" and e.data["text"] == "first: remember PLUM" for e in again)


async def test_hang_is_stopped_by_the_turn_watchdog(
    make_settings: Settings, tmp_path: Path
) -> None:
    binary = write_wrapper(tmp_path / "bin", "--fake-hang", "--fake-ignore-sigterm")
    settings = make_settings(
        turn_idle_timeout=0.5, kill_grace=0.3, extra={"provider": {"binary": str(binary)}}
    )
    async with Engine(settings, ClaudeCodeProvider(settings.provider)) as engine:
        events = await (await engine.execute("k", "hang")).collect(15)
    assert events[-2].data["code"] == "turn_timeout"
    assert events[-1].data["status"] == "error"


async def test_no_result_line_is_stopped_by_the_watchdog(
    make_settings: Settings, tmp_path: Path
) -> None:
    binary = write_wrapper(tmp_path / "bin", "--fake-no-result")
    settings = make_settings(
        turn_idle_timeout=0.5, kill_grace=0.3, extra={"provider": {"binary": str(binary)}}
    )
    async with Engine(settings, ClaudeCodeProvider(settings.provider)) as engine:
        events = await (await engine.execute("k", "x")).collect(15)
    assert events[-2].data["code"] == "turn_timeout"


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def child_count() -> int:
    me = str(os.getpid())
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            count += fields[1] == me
    return count


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_200_spawn_stop_cycles_leak_nothing(tmp_path: Path) -> None:
    binary = write_wrapper(tmp_path / "bin")
    provider = ClaudeCodeProvider(ProviderSettings(), binary=binary, init_timeout=10)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}

    async def cycle(i: int) -> None:
        spec = AgentStartSpec(
            session_id="s",
            provider_session_id=f"00000000-0000-4000-8000-{i:012d}",
            resume=False,
            work_dir=tmp_path / "w",
            state_dir=tmp_path / "st",
            env=env,
        )
        process = await provider.start(spec, allow_all)
        await process.close(0.5)

    for i in range(5):  # warm up lazily created loop resources
        await cycle(i)
    fds, threads, children, rss = fd_count(), threading.active_count(), child_count(), rss_kib()
    for i in range(5, 205):
        await cycle(i)
    assert fd_count() == fds
    assert threading.active_count() == threads
    assert child_count() == children == 0
    assert rss_kib() - rss < 30 * 1024, "RSS grew by more than 30 MiB over 200 cycles"


async def test_python_api_open_execute_iterate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedding API with a tool call, the fake agent as the provider's binary."""
    import hotplex

    binary = write_wrapper(tmp_path / "bin")
    cfg = tmp_path / "hotplex.yaml"
    cfg.write_text(f"engine: {{data_dir: {tmp_path / 'data'}}}\nprovider: {{binary: {binary}}}\n")
    monkeypatch.setenv("HOTPLEX_DISABLE_PLUGINS", "")
    async with hotplex.open(cfg) as hp:
        reply = await hp.execute("my-project", "RUN: touch made.txt")
        seen = []
        async for event in reply:
            seen.append(event.type)
            if event.type == "permission_request":
                await hp.decide(event.data["permission_id"], "allow", scope="once")
        sessions = hp.sessions()
        assert await hp.interrupt(hp.session_id("my-project")) is False
    assert seen[-1] == "done" and "tool_result" in seen
    assert (Path(sessions[0].work_dir) / "made.txt").exists()


def test_readme_embedding_example_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's Python block, run as it is, against a hotplex.yaml in the working
    directory that points the provider at the fake agent."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("## Embedding HotPlex in Python") :]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    binary = write_wrapper(tmp_path / "bin")
    (tmp_path / "hotplex.yaml").write_text(
        f"engine: {{data_dir: {tmp_path / 'data'}}}\nprovider: {{binary: {binary}}}\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOTPLEX_DISABLE_PLUGINS", "")
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "list the failing tests" in out  # the fake agent's echo, streamed
    assert "SessionInfo(" in out and "my-project" in out


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_engine_confines_agents_and_kills_escaped_grandchildren(
    make_settings: Settings, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pids"
    binary = write_wrapper(tmp_path / "bin", "--fake-escape", "--fake-pid-file", str(pid_file))
    settings = make_settings(extra={"provider": {"binary": str(binary)}})
    async with Engine(settings, ClaudeCodeProvider(settings.provider)) as engine:
        await (await engine.execute("k", "hi")).collect(10)
        agent_pid, escaped = (int(p) for p in pid_file.read_text().split())
        backend = engine.limit_backend
        limits = Path(f"/proc/{agent_pid}/limits").read_text()
        assert (
            "Max address space" in limits
            and "unlimited" in limits.split("Max address space")[1].splitlines()[0]
        )
    try:
        if backend in ("cgroup1", "cgroup2"):
            async with asyncio.timeout(5):
                while running(escaped):
                    await asyncio.sleep(0.02)
        else:  # rlimits cannot catch a setsid() grandchild: documented limitation
            assert running(escaped)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(escaped, signal.SIGKILL)
