"""Resource limits of agent process trees, on the real kernel of this machine.

The generic tests run once per backend; a backend :func:`detect_backend` cannot produce here
is skipped with the reason.
"""

from __future__ import annotations

import logging
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hotplex.confinement import AgentLimits, LimitBackend
from hotplex.engine import limits as limits_module
from hotplex.engine import rlimits
from hotplex.engine.cgroups import Cgroup1Backend, Cgroup2Backend
from hotplex.engine.environment import agent_environment
from hotplex.engine.limits import BACKENDS, detect_backend
from hotplex.engine.rlimits import RlimitBackend

CLAUDE = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "claude"
CLAUDE_VERSION = "2.1.197"
MiB = 1024**2
DEADLINE = 10.0

CgroupBackend = Cgroup1Backend | Cgroup2Backend


# -- helpers -------------------------------------------------------------------------------


def until(predicate: Callable[[], bool], timeout: float = DEADLINE) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


def gone(pid: int) -> bool:
    """The process no longer runs. An orphan zombie counts: it is dead, and reaping it is
    init's job, not ours."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return _state(pid) in {"Z", "X", None}


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def read_line(proc: subprocess.Popen[str], timeout: float = DEADLINE) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no output from {proc.args!r} within {timeout}s"
    return proc.stdout.readline().strip()


def proc_limits(pid: int) -> dict[str, tuple[str, str]]:
    """``/proc/<pid>/limits`` as {name: (soft, hard)}."""
    rows = Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]
    return {row[:26].strip(): (row[26:47].strip(), row[47:68].strip()) for row in rows}


def wait_for_exec(pid: int, comm: str) -> None:
    """Wait until a wrapper (``prlimit``) has exec'd the real command."""
    assert until(lambda: Path(f"/proc/{pid}/comm").read_text().strip() == comm), comm


def cgroup_file(backend: LimitBackend, group: str, name: str) -> Path:
    assert isinstance(backend, Cgroup1Backend | Cgroup2Backend)
    return next(d / name for d in backend.directories(group) if (d / name).exists())


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> LimitBackend:
    found = detect_backend(prefer=request.param)
    if found.name != request.param:
        pytest.skip(f"{request.param} is not usable here (detect_backend gives {found.name})")
    return found


@pytest.fixture
def group(backend: LimitBackend) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        backend.kill_group(name)
        backend.release(name)
        if isinstance(backend, Cgroup1Backend | Cgroup2Backend):
            assert not any(d.exists() for d in backend.directories(name)), "cgroup leaked"


@pytest.fixture
def spawn(backend: LimitBackend, group: str) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Spawn under the backend (wrap, then attach); every process group is killed at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(argv: list[str], limits: AgentLimits, **kwargs: Any) -> subprocess.Popen[str]:
        proc: subprocess.Popen[str] = subprocess.Popen(
            backend.wrap(argv, limits),
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            **kwargs,
        )
        started.append(proc)
        backend.attach(proc.pid, group, limits)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=DEADLINE)
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.fixture(scope="module", autouse=True)
def remove_new_parents() -> Iterator[None]:
    """Remove the ``hotplex`` parent cgroups that detection creates, unless they were there
    before (or another run still uses them)."""
    existed = {p for p in _possible_parents() if p.exists()}
    yield
    for parent in _possible_parents() - existed:
        try:
            parent.rmdir()
        except OSError:
            pass


def _possible_parents() -> set[Path]:
    root = Path("/sys/fs/cgroup")
    places: list[tuple[Path, str | None]] = [(root / "memory", "memory"), (root / "pids", "pids")]
    places += [(root, None), (root / "unified", None)]
    parents: set[Path] = set()
    for mount, controller in places:
        try:
            own = mount / limits_module.own_cgroup(controller).lstrip("/")
        except Exception:
            continue
        parents |= {own / limits_module.PARENT_NAME, own.parent / limits_module.PARENT_NAME}
    return parents


# -- detection -----------------------------------------------------------------------------


def test_detect_backend_here(capsys: pytest.CaptureFixture[str]) -> None:
    found = detect_backend()
    with capsys.disabled():
        print(f"\nlimit backend detected here: {found.name}", end=" ")
    assert found.name in BACKENDS
    assert isinstance(found, LimitBackend)


def test_prefer_rlimit_gives_rlimit() -> None:
    assert detect_backend(prefer="rlimit").name == "rlimit"


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="cgroup3"):
        detect_backend(prefer="cgroup3")


def test_without_cgroups_falls_back_to_rlimit_with_one_info_line_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hotplex.engine.limits")
    assert detect_backend(tmp_path).name == "rlimit"
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(lines) == 2
    assert lines[0].startswith("cgroup2 limits unavailable")
    assert lines[1].startswith("cgroup1 limits unavailable")


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "../x"])
def test_group_names_cannot_escape_the_parent(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="group name"):
        Cgroup2Backend(tmp_path).directories(bad)


# -- rlimit arithmetic ---------------------------------------------------------------------


@pytest.mark.parametrize("prlimit", ["/usr/bin/prlimit", None])
def test_rlimit_as_is_never_used(prlimit: str | None) -> None:
    limiter = rlimits.Rlimits(prlimit)
    settings = limiter.settings(AgentLimits(), tree=True, process=True)
    assert resource.RLIMIT_AS not in {res for res, _, _ in settings}
    wrapped = RlimitBackend(prlimit).wrap(["x"], AgentLimits())
    assert not any(arg.startswith("--as") for arg in wrapped)


def test_prlimit_wrapper_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rlimits, "user_task_count", lambda uid: 100)
    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft != resource.RLIM_INFINITY and soft <= 100 + 512:
        pytest.skip(f"RLIMIT_NPROC soft limit {soft} is already tighter")
    argv = RlimitBackend("/usr/bin/prlimit").wrap(["claude", "-p"], AgentLimits())
    assert argv[0] == "/usr/bin/prlimit"
    assert argv[-3:] == ["--", "claude", "-p"]
    assert f"--data={4 * 1024**3}:{4 * 1024**3}" in argv
    assert f"--nproc=612:{rlimits._fmt(hard)}" in argv
    assert "--nofile=4096:4096" in argv
    assert "--core=0:0" in argv


def test_nproc_is_never_set_below_the_users_tasks_plus_max_pids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft == resource.RLIM_INFINITY:
        pytest.skip("RLIMIT_NPROC is unlimited here")
    monkeypatch.setattr(rlimits, "user_task_count", lambda uid: soft)
    argv = RlimitBackend("/usr/bin/prlimit").wrap(["x"], AgentLimits())
    assert not any(arg.startswith("--nproc") for arg in argv)


def test_user_task_count_counts_this_process() -> None:
    assert rlimits.user_task_count(os.getuid()) >= 1


def test_nothing_to_limit_runs_the_command_unwrapped() -> None:
    unlimited = AgentLimits(None, None, None, core_dumps=True)
    assert RlimitBackend("/usr/bin/prlimit").wrap(["x"], unlimited) == ["x"]


# -- generic tests, once per backend -------------------------------------------------------


def test_sleep_is_in_its_cgroup_and_killed_with_it(
    backend: LimitBackend, group: str, spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    proc = spawn(["sleep", "60"], AgentLimits())
    if isinstance(backend, Cgroup1Backend | Cgroup2Backend):
        assert proc.pid in backend.members(group)
        assert f"/hotplex/{group}" in Path(f"/proc/{proc.pid}/cgroup").read_text()
        assert backend.kill_group(group) == 1
        assert proc.wait(timeout=DEADLINE) == -signal.SIGKILL
        assert backend.members(group) == set()
    else:
        assert backend.kill_group(group) == 0
        assert proc.poll() is None


SETSID_CHILD = textwrap.dedent(
    """
    import os, signal
    if os.fork() == 0:
        os.setsid()
        print(os.getpid(), flush=True)  # only once it has left the agent's session
        signal.pause()
        os._exit(0)
    signal.pause()
    """
)


def test_kill_group_catches_a_grandchild_that_left_with_setsid(
    backend: LimitBackend, group: str, spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    proc = spawn([sys.executable, "-c", SETSID_CHILD], AgentLimits())
    escaped = int(read_line(proc))
    try:
        assert os.getsid(escaped) == escaped != os.getsid(proc.pid)
        # What a stop does first: kill the agent's process group. The escapee survives it.
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=DEADLINE) == -signal.SIGKILL
        assert not gone(escaped)

        killed = backend.kill_group(group)
        if backend.name == "rlimit":
            # Documented limitation: without a cgroup nothing knows the escapee belongs to the
            # agent; it survives. The engine must report it; here we kill it ourselves.
            assert killed == 0
            assert not gone(escaped)
            os.kill(escaped, signal.SIGKILL)
        else:
            assert killed == 1
        assert until(lambda: gone(escaped)), f"setsid grandchild {escaped} survived"
    finally:
        if not gone(escaped):
            os.kill(escaped, signal.SIGKILL)


FORK_BOMB = textwrap.dedent(
    """
    import os, signal
    forked = 0
    for _ in range(100):
        try:
            pid = os.fork()
        except OSError:
            continue
        if pid == 0:
            signal.pause()
            os._exit(0)
        forked += 1
    print(forked, flush=True)
    signal.pause()
    """
)


def test_fork_bomb_is_bounded_by_max_pids(
    backend: LimitBackend, group: str, spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    limits = AgentLimits(max_pids=20)
    proc = spawn([sys.executable, "-c", FORK_BOMB], limits)
    forked = int(read_line(proc))
    if isinstance(backend, Cgroup1Backend | Cgroup2Backend):
        assert len(backend.members(group)) == forked + 1
        assert backend.kill_group(group) == forked + 1
        assert proc.wait(timeout=DEADLINE) == -signal.SIGKILL
    if backend.name == "rlimit" and os.geteuid() == 0 and forked > 19:
        pytest.xfail(
            f"{forked} of 100 forks succeeded: the rlimit backend can only use RLIMIT_NPROC, "
            "and the kernel ignores RLIMIT_NPROC for root (CAP_SYS_RESOURCE/CAP_SYS_ADMIN). "
            "Only a pids cgroup (or a dedicated non-root uid) bounds a fork bomb."
        )
    # The forking process itself is one of the 20; RLIMIT_NPROC also counts concurrent
    # tasks of the user that come and go, hence a little slack for the rlimit backend.
    slack = 5 if backend.name == "rlimit" else 0
    assert forked <= 20 - 1 + slack


def test_memory_limit_never_uses_rlimit_as(
    backend: LimitBackend, group: str, spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    limits = AgentLimits(memory_bytes=256 * MiB)
    proc = spawn(["sleep", "60"], limits)
    wait_for_exec(proc.pid, "sleep")
    seen = proc_limits(proc.pid)
    assert seen["Max address space"] == ("unlimited", "unlimited")
    assert seen["Max open files"] == ("4096", "4096")
    assert seen["Max core file size"][0] == "0"
    if backend.name == "rlimit":
        assert seen["Max data size"] == (str(256 * MiB), str(256 * MiB))
    else:
        name = "memory.limit_in_bytes" if backend.name == "cgroup1" else "memory.max"
        assert int(cgroup_file(backend, group, name).read_text()) == 256 * MiB
        assert seen["Max data size"] == proc_limits(os.getpid())["Max data size"]
        assert int(cgroup_file(backend, group, "pids.max").read_text()) == 512


def test_real_claude_cli_starts_under_the_default_limits(
    backend: LimitBackend, spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    if not CLAUDE.exists():
        message = f"Claude Code CLI not installed at {CLAUDE} (npm ci)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    env = agent_environment(os.environ)
    proc = spawn([str(CLAUDE), "--version"], AgentLimits(), env=env, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert CLAUDE_VERSION in out


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_starts_under_the_default_limits(
    backend: LimitBackend, spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    proc = spawn(["node", "-e", "console.log(1)"], AgentLimits(), stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.strip() == "1"


# -- falling back when a cgroup cannot be set up --------------------------------------------


@pytest.mark.parametrize("prlimit", ["/usr/bin/prlimit", None])
def test_attach_falls_back_to_rlimits_when_the_cgroup_write_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, prlimit: str | None
) -> None:
    if prlimit is not None and not Path(prlimit).exists():
        pytest.skip("prlimit is not installed")
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    broken = Cgroup1Backend(blocker / "memory", blocker / "pids", prlimit)
    limits = AgentLimits(memory_bytes=300 * MiB)
    caplog.set_level(logging.INFO, logger="hotplex.engine.cgroups")
    proc = subprocess.Popen(broken.wrap(["sleep", "60"], limits), start_new_session=True)
    try:
        broken.attach(proc.pid, "agent", limits)
        wait_for_exec(proc.pid, "sleep")
        seen = proc_limits(proc.pid)
        assert seen["Max data size"] == (str(300 * MiB), str(300 * MiB))
        assert seen["Max open files"] == ("4096", "4096")
        assert seen["Max address space"] == ("unlimited", "unlimited")
        assert any("using rlimits" in r.getMessage() for r in caplog.records)
        assert broken.kill_group("agent") == 0
    finally:
        proc.kill()
        proc.wait(timeout=DEADLINE)


def test_rlimit_backend_without_prlimit_binary_limits_before_the_agent_runs() -> None:
    backend = RlimitBackend(prlimit=None)
    limits = AgentLimits(memory_bytes=200 * MiB)
    argv = backend.wrap(["sleep", "60"], limits)
    assert argv[0] == "/bin/sh"  # the start gate: stopped until attach has set the limits
    proc = subprocess.Popen(argv, start_new_session=True)
    try:
        backend.attach(proc.pid, "agent", limits)
        wait_for_exec(proc.pid, "sleep")
        seen = proc_limits(proc.pid)
        assert seen["Max data size"] == (str(200 * MiB), str(200 * MiB))
        assert seen["Max open files"] == ("4096", "4096")
        assert seen["Max address space"] == ("unlimited", "unlimited")
    finally:
        proc.kill()
        proc.wait(timeout=DEADLINE)


def test_cgroup2_writes_its_limit_files(tmp_path: Path) -> None:
    """The cgroup2 backend against a stand-in directory (no usable cgroup2 here, maybe)."""
    parent = tmp_path / "hotplex"
    fake = Cgroup2Backend(parent, prlimit=None)
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        fake.attach(proc.pid, "agent", AgentLimits(memory_bytes=123 * MiB, max_pids=None))
        directory = parent / "agent"
        assert (directory / "memory.max").read_text() == str(123 * MiB)
        assert (directory / "pids.max").read_text() == "max"
        assert fake.members("agent") == {proc.pid}
        assert proc_limits(proc.pid)["Max open files"] == ("4096", "4096")
    finally:
        proc.kill()
        proc.wait(timeout=DEADLINE)
