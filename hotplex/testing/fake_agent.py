"""A fake Claude Code CLI (2.1.197) in persistent stream-json mode, for the engine's fault tests.

Run it exactly like the real CLI, with cwd set to the workspace::

    python hotplex/testing/fake_agent.py -p --input-format stream-json \\
        --output-format stream-json --verbose --include-partial-messages \\
        --permission-prompt-tool stdio --session-id <uuid> [--fake-... switches]

or ``python -m hotplex.testing.fake_agent ...``; :func:`command` builds the argument list.
Only the standard library is imported, so the first byte comes within tens of milliseconds.

Protocol (see the research note ``protocols.md`` sections 2-5): NDJSON on stdin and stdout,
nothing on stdout before the first input line, and one ``system/init`` ... ``result`` bracket per
``user`` line (messages that arrive while a turn runs are queued and become their own turns).
Like the real CLI it refuses ``--output-format stream-json`` without ``--verbose``, a
``--session-id`` that is not a UUID or whose transcript exists, and ``--resume`` of an unknown id;
an invalid JSON line or a ``user`` line without ``message`` kills it with rc 1; ``--version``
prints ``2.1.197 (Claude Code)``. Unknown flags,
unknown line types and ``keep_alive`` are ignored. On stdin EOF it finishes the queued turns and
exits 0 (1 if the last result was an error).

The reply to a user text is ``echo: <text>`` streamed one word per ``text_delta``. The session
remembers every user text (a transcript under ``$CLAUDE_CONFIG_DIR/projects/<cwd-key>/`` lets
``--resume`` restore it), and a text containing ``what did I say first`` is answered with
``first: <first user text of the session>``. Keywords drive tools:

``RUN: <command>``
    A ``Bash`` tool call with ``{"command": ..., "description": "fake command"}``. PreToolUse hooks
    registered by ``initialize`` are asked first, then ``can_use_tool`` (with
    ``--permission-prompt-tool stdio``). The command is not executed: the output is
    ``ran: <command>``, except that ``touch <files>`` really creates the files (relative to cwd).
``RUN_READ: <path>``
    A ``Read`` tool call; read-only, so only hooks are asked. Output: the first 100 bytes.

Both end with a second model round trip whose text is ``done: <command or path>``.

Permissions follow the real CLI: ``--allowedTools``/``--disallowedTools`` rules such as
``Bash(touch *)``, ``--permission-mode dontAsk`` (deny) and ``bypassPermissions`` (run; refused as
root unless ``IS_SANDBOX=1``), and without a prompt tool a Bash call is denied with
``This command requires approval``. ``UserPromptSubmit`` and ``Stop`` hooks are called too (their
answers are ignored). ``--max-turns 1`` ends a tool turn with ``error_max_turns``. SIGTERM exits
rc 143 at once; SIGINT mid-turn acts like ``interrupt`` and then exits 0.

Failure switches (all optional and combinable), and the engine behaviour each one exercises:

``--fake-slow SECONDS``
    Wait SECONDS before each text delta after the first. Tests live typing, mid-stream
    ``interrupt`` and messages queued while a turn runs.
``--fake-hang``
    After ``system/init`` the turn never produces more output (a hung API call). It still
    answers control requests, and ``interrupt`` ends the turn as ``aborted_streaming``.
    Tests the engine's turn watchdog.
``--fake-crash-after N``
    In the Nth turn (1-based), right after the first text delta, print
    ``fake agent: simulated crash`` on stderr and exit rc 3. Tests crash detection mid-turn.
``--fake-exit-code N``
    Exit with rc N (instead of 0/1) when stdin reaches EOF. Tests exit-code reporting.
``--fake-big-line BYTES``
    Every final answer starts with an extra text block of BYTES characters, streamed as one
    ``text_delta`` with ``--include-partial-messages`` (so that ``stream_event`` line and the
    ``assistant`` line exceed BYTES; ``result`` keeps the short reply). Tests the reader's line
    limit (the real CLI writes multi-megabyte lines).
``--fake-stderr-flood BYTES``
    At the start of each turn, write BYTES of junk to stderr with blocking writes. A host that
    does not drain stderr deadlocks. Tests stderr draining.
``--fake-ignore-sigterm``
    Ignore SIGTERM (by default SIGTERM exits rc 143 at once, like the real CLI). Tests the
    SIGTERM-then-SIGKILL escalation.
``--fake-fork N``
    At start-up fork N children that sleep forever in the fake's process group, with
    stdin/stdout/stderr on /dev/null. Tests that the engine kills the whole process group.
``--fake-pid-file PATH``
    Write the fake's own pid, then the pid of every child spawned by a switch, one per line
    (written atomically once all children exist).
``--fake-escape``
    Fork one child that calls ``setsid()`` (leaves the process group) and sleeps forever. Only
    a cgroup catches it; tests must kill it themselves (its pid is in the pid file).
``--fake-leak-pipe``
    Fork a child in the same process group that keeps stdout open and sleeps forever; the fake
    itself exits 0 right after the first turn's ``result``. Tests that the engine treats process
    exit (not stdout EOF) as the end and still reaps the group.
``--fake-dump-env PATH``
    At start-up write ``json.dumps(dict(os.environ))`` to PATH. Tests the child environment.
``--fake-no-result``
    Never write ``result`` lines (a protocol violation). Tests the engine's turn timeout.

Not imitated: sub-agents, thinking blocks, MCP tool calls (``--mcp-config`` servers are only
listed as connected in ``init``), API errors and retries, ``--replay-user-messages``,
``--continue``, ``--fork-session``, the ``sessions/<pid>.json`` registry, control requests other
than ``initialize``, ``interrupt``, ``set_permission_mode``, ``set_model``,
``set_max_thinking_tokens``, ``mcp_status`` and ``end_session`` (answered as unsupported), and
messages injected into a turn that is running a tool (they are queued instead). The transcript
holds only the user and final assistant entries.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, NoReturn

JSON = dict[str, Any]

VERSION = "2.1.197"
DEFAULT_MODEL = "claude-opus-4-8[1m]"
MODEL_ALIASES = {
    "default": DEFAULT_MODEL,
    "opus": DEFAULT_MODEL,
    "sonnet": "claude-sonnet-5",
    "haiku": "claude-haiku-4-5",
}
PERMISSION_MODES = ("acceptEdits", "auto", "bypassPermissions", "default", "dontAsk", "plan")
BASE_TOOLS = (
    "Task",
    "Bash",
    "Glob",
    "Grep",
    "Read",
    "Edit",
    "Write",
    "NotebookEdit",
    "WebFetch",
    "TodoWrite",
    "WebSearch",
    "BashOutput",
    "KillShell",
    "Skill",
    "SlashCommand",
)
STDIO_TOOLS = ("AskUserQuestion", "EnterPlanMode", "ExitPlanMode")
READ_ONLY_TOOLS = frozenset({"Read", "Glob", "Grep"})
COST_PER_TURN = 0.0002
READ_LIMIT = 100
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
RULE_RE = re.compile(r"[^\s,()]+(?:\([^)]*\))?")
REJECTED = (
    "The user doesn't want to proceed with this tool use. The tool use was rejected (eg. if it "
    "was a file edit, the new_string was NOT written to the file). STOP what you are doing and "
    "wait for the user to tell you how to proceed."
)
CRASH_RC = 3


def command(*switches: str) -> list[str]:
    """Return the argv that starts the fake agent with ``switches`` (runs as a script path)."""
    return [sys.executable, str(Path(__file__).resolve()), *switches]


def write_wrapper(directory: Path, *switches: str, name: str = "claude") -> Path:
    """Write an executable ``directory/name`` that runs the fake with ``switches``, for use
    as ``provider.binary`` (the engine then drives it exactly like the real CLI)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    argv = " ".join(shlex.quote(part) for part in command(*switches))
    path.write_text(f'#!/bin/sh\nexec {argv} "$@"\n')
    path.chmod(0o755)
    return path


def cwd_key(cwd: str) -> str:
    """Transcript folder name for ``cwd``: every non-alphanumeric character becomes ``-``."""
    return re.sub(r"[^A-Za-z0-9]", "-", cwd)


def transcript_path(cwd: str, session_id: str) -> Path:
    """Where the fake (like the real CLI) keeps the transcript of ``session_id`` for ``cwd``."""
    config = os.environ.get("CLAUDE_CONFIG_DIR") or str(Path.home() / ".claude")
    return Path(config) / "projects" / cwd_key(cwd) / f"{session_id}.jsonl"


# ----------------------------------------------------------------------------- configuration


class Config:
    """The command line, reduced to what the fake uses."""

    def __init__(self, ns: argparse.Namespace) -> None:
        self.output_format: str = ns.output_format
        self.verbose: bool = ns.verbose
        self.partial: bool = ns.include_partial_messages
        self.prompt_tool: str | None = ns.permission_prompt_tool
        self.session_id: str | None = ns.session_id
        self.resume: str | None = ns.resume
        self.model: str = resolve_model(ns.model)
        self.permission_mode: str = ns.permission_mode or "default"
        if ns.dangerously_skip_permissions:
            self.permission_mode = "bypassPermissions"
        self.allowed: list[str] = split_rules(ns.allowed_tools)
        self.disallowed: list[str] = split_rules(ns.disallowed_tools)
        self.tools: list[str] | None = None if ns.tools is None else split_rules(ns.tools)
        self.mcp_config: list[str] = ns.mcp_config
        self.max_turns: int | None = ns.max_turns
        self.slow: float = max(0.0, ns.fake_slow)
        self.hang: bool = ns.fake_hang
        self.crash_after: int | None = ns.fake_crash_after
        self.exit_code: int | None = ns.fake_exit_code
        self.big_line: int = max(0, ns.fake_big_line)
        self.stderr_flood: int = max(0, ns.fake_stderr_flood)
        self.ignore_sigterm: bool = ns.fake_ignore_sigterm
        self.fork: int = max(0, ns.fake_fork)
        self.pid_file: str | None = ns.fake_pid_file
        self.escape: bool = ns.fake_escape
        self.leak_pipe: bool = ns.fake_leak_pipe
        self.dump_env: str | None = ns.fake_dump_env
        self.no_result: bool = ns.fake_no_result


def parse_args(argv: list[str]) -> Config:
    """Parse the real CLI's flags plus the ``--fake-*`` switches; unknown flags are ignored."""
    p = argparse.ArgumentParser(prog="claude", add_help=False, allow_abbrev=False)
    for flag in (
        "--verbose",
        "--include-partial-messages",
        "--strict-mcp-config",
        "--dangerously-skip-permissions",
        "--fake-hang",
        "--fake-ignore-sigterm",
        "--fake-escape",
        "--fake-leak-pipe",
        "--fake-no-result",
    ):
        p.add_argument(flag, action="store_true")
    p.add_argument("-p", "--print", action="store_true")
    for flag in (
        "--input-format",
        "--output-format",
        "--permission-prompt-tool",
        "--session-id",
        "--model",
        "--permission-mode",
        "--append-system-prompt",
        "--system-prompt",
        "--fake-pid-file",
        "--fake-dump-env",
    ):
        p.add_argument(flag)
    p.add_argument("-r", "--resume")
    for flag, dest in (
        ("--allowedTools", "allowed_tools"),
        ("--disallowedTools", "disallowed_tools"),
    ):
        alias = re.sub(r"([A-Z])", lambda m: "-" + m.group(1).lower(), flag)
        p.add_argument(flag, alias, dest=dest, nargs="+", action="extend", default=[])
    p.add_argument("--tools", nargs="+", action="extend")
    p.add_argument("--mcp-config", nargs="+", action="extend", default=[])
    p.add_argument("--add-dir", nargs="+", action="extend", default=[])
    p.add_argument("--max-turns", type=int)
    p.add_argument("--fake-slow", type=float, default=0.0)
    for flag in ("--fake-crash-after", "--fake-exit-code"):
        p.add_argument(flag, type=int)
    for flag in ("--fake-big-line", "--fake-stderr-flood", "--fake-fork"):
        p.add_argument(flag, type=int, default=0)
    ns, _unknown = p.parse_known_args(argv)
    return Config(ns)


def resolve_model(name: str | None) -> str:
    """Map a model alias to the id ``init`` reports; full ids pass through."""
    if not name:
        return DEFAULT_MODEL
    return MODEL_ALIASES.get(name, name)


def split_rules(values: list[str]) -> list[str]:
    """Split ``--allowedTools``-style values on commas and spaces outside parentheses."""
    return [rule for value in values for rule in RULE_RE.findall(value)]


def startup_error(cfg: Config) -> str | None:
    """The error text the real CLI prints (rc 1) for this command line, or None."""
    if cfg.output_format == "stream-json" and not cfg.verbose:
        return "Error: When using --print, --output-format=stream-json requires --verbose"
    if cfg.permission_mode not in PERMISSION_MODES:
        return (
            f"error: option '--permission-mode <mode>' argument '{cfg.permission_mode}' is "
            f"invalid. Allowed choices are {', '.join(PERMISSION_MODES)}."
        )
    if (
        cfg.permission_mode == "bypassPermissions"
        and os.geteuid() == 0
        and os.environ.get("IS_SANDBOX") != "1"
    ):
        return (
            "--dangerously-skip-permissions cannot be used with root/sudo privileges for "
            "security reasons"
        )
    if cfg.session_id is None:
        return None
    if cfg.resume is not None:
        return (
            "Error: --session-id can only be used with --continue or --resume if "
            "--fork-session is also specified."
        )
    if not UUID_RE.match(cfg.session_id):
        return "Error: Invalid session ID. Must be a valid UUID."
    if transcript_path(os.getcwd(), cfg.session_id).exists():
        return f"Error: Session ID {cfg.session_id} is already in use."
    return None


# ----------------------------------------------------------------------------- small helpers


def new_uuid() -> str:
    return str(uuid.uuid4())


def timestamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def api_model(model: str) -> str:
    """The model id sent to the API: ``init`` shows ``[1m]`` context suffixes, the API does not."""
    return model.removesuffix("[1m]")


def user_text(message: Any) -> str:
    """The text of a stdin/transcript user message: a string or the text blocks joined."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts = [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
    return "\n".join(t for t in texts if isinstance(t, str))


def split_deltas(text: str) -> list[str]:
    """Split a reply into word-sized ``text_delta`` pieces."""
    return re.findall(r"\S+\s*|\s+", text) or [text]


def load_history(path: Path) -> list[str]:
    """User texts of a transcript (tool results, markers and meta entries skipped)."""
    history: list[str] = []
    with path.open(encoding="utf-8") as file:
        for line in file:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if not isinstance(entry, dict) or entry.get("type") != "user" or entry.get("isMeta"):
                continue
            text = user_text(entry.get("message"))
            if text and not text.startswith(("[Request interrupted", "<local-command")):
                history.append(text)
    return history


def mcp_servers(values: list[str]) -> list[JSON]:
    """Server names from ``--mcp-config`` values (inline JSON or files), all shown connected."""
    names: list[str] = []
    for value in values:
        text = value
        if not value.lstrip().startswith("{"):
            try:
                text = Path(value).read_text(encoding="utf-8")
            except OSError:
                continue
        try:
            data = json.loads(text)
        except ValueError:
            continue
        servers = data.get("mcpServers") if isinstance(data, dict) else None
        if isinstance(servers, dict):
            names.extend(str(name) for name in servers)
    return [{"name": name, "status": "connected"} for name in names]


def rule_matches(rule: str, tool: str, target: str) -> bool:
    """Whether a permission rule such as ``Bash`` or ``Bash(python3 *)`` covers this call."""
    name, _, content = rule.partition("(")
    if name != tool:
        return False
    if not content:
        return True
    pattern = content.removesuffix(")")
    if pattern.endswith(":*"):
        pattern = pattern[:-2] + "*"
    return fnmatchcase(target, pattern)


def hook_matches(matcher: Any, tool: str | None) -> bool:
    """PreToolUse matcher semantics: empty/``*`` match all, else exact name or regex."""
    if tool is None or matcher in (None, "", "*"):
        return True
    if not isinstance(matcher, str):
        return False
    if matcher == tool:
        return True
    try:
        return re.fullmatch(matcher, tool) is not None
    except re.error:
        return False


def write_atomically(path: str, text: str) -> None:
    """Write ``text`` so that readers see either nothing or the whole file."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(tmp, path)


def flood_stderr(size: int) -> None:
    """Write ``size`` bytes of junk to fd 2 with blocking writes (the host must drain it)."""
    sys.stderr.flush()
    chunk = b"fake agent stderr flood: junk junk junk junk junk junk junk junk junk\n" * 1024
    remaining = size
    while remaining > 0:
        remaining -= os.write(2, chunk[:remaining])


# ----------------------------------------------------------------------------- child processes


def spawn_sleeper(*, escape: bool = False, keep_stdout: bool = False) -> int:
    """Fork a child that sleeps forever; return once it is in place (after setsid if escaping)."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        _sleeper(ready_w, escape=escape, keep_stdout=keep_stdout)
    os.close(ready_w)
    os.read(ready_r, 1)
    os.close(ready_r)
    return pid


def _sleeper(ready_fd: int, *, escape: bool, keep_stdout: bool) -> None:
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if escape:
            os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        if not keep_stdout:
            os.dup2(null, 1)
        os.dup2(null, 2)
        os.write(ready_fd, b"1")
        # The sleeper must not hold the host's stdin/stderr pipes (or anything else) open.
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        while True:
            signal.pause()
    finally:
        os._exit(0)


def spawn_children(cfg: Config) -> list[int]:
    """Start the children requested by ``--fake-fork``/``--fake-escape``/``--fake-leak-pipe``."""
    pids = [spawn_sleeper() for _ in range(cfg.fork)]
    if cfg.escape:
        pids.append(spawn_sleeper(escape=True))
    if cfg.leak_pipe:
        pids.append(spawn_sleeper(keep_stdout=True))
    return pids


# ----------------------------------------------------------------------------- turn state


class Pending:
    """A control request sent to the host, waiting for its ``control_response``."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.done = threading.Event()
        self.outcome = ""  # success | error | cancelled | closed
        self.body: JSON = {}
        self.error = ""

    def resolve(self, outcome: str, body: Any = None, error: str = "") -> None:
        if self.done.is_set():
            return
        self.outcome = outcome
        self.body = body if isinstance(body, dict) else {}
        self.error = error
        self.done.set()


class Turn:
    """Per-turn bookkeeping: interruption, the pending request, usage and denials."""

    def __init__(self, number: int, text: str) -> None:
        self.number = number
        self.text = text
        self.started = time.monotonic()
        self.interrupted = threading.Event()
        self.pending: Pending | None = None
        self.deltas = 0
        self.round_trips = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.denials: list[JSON] = []


class Verdict:
    """Outcome of the permission checks for one tool call."""

    def __init__(self, kind: str, message: str = "", tool_input: JSON | None = None) -> None:
        self.kind = kind  # run | deny | error | interrupt
        self.message = message
        self.input: JSON = tool_input or {}


class Block:
    """One content block of a model response, with the pieces it is streamed in."""

    def __init__(self, block: JSON, pieces: list[str]) -> None:
        self.block = block
        self.pieces = pieces


def text_block(text: str, pieces: list[str] | None = None) -> Block:
    return Block({"type": "text", "text": text}, split_deltas(text) if pieces is None else pieces)


# ----------------------------------------------------------------------------- the agent


class FakeAgent:
    """The running fake: the main thread reads stdin, one worker thread runs the turns."""

    def __init__(self, cfg: Config, session_id: str, history: list[str]) -> None:
        self.cfg = cfg
        self.session_id = session_id
        self.cwd = os.getcwd()
        self.transcript = transcript_path(self.cwd, session_id)
        self.model = cfg.model
        self.permission_mode = cfg.permission_mode
        self.history = history
        self.tools = self._tool_list()
        self.mcp = mcp_servers(cfg.mcp_config)
        self.hooks: dict[str, list[tuple[Any, list[str]]]] = {}
        self.initialized = False
        self._out = sys.stdout.buffer
        self._write_lock = threading.Lock()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._inbox: deque[str] = deque()
        self._eof = False
        self._current: Turn | None = None
        self._pending: dict[str, Pending] = {}
        self._exit_after_turn = False
        self._turns = 0
        self._cost = 0.0
        self._api_ms = 0
        self._model_usage: dict[str, JSON] = {}
        self._last_error = False
        self._parent_uuid: str | None = None

    # ------------------------------------------------------------------ output

    def emit(self, obj: JSON) -> None:
        """Write one NDJSON line to stdout atomically and flush it."""
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        data = text.encode("utf-8", "backslashreplace") + b"\n"
        with self._write_lock:
            try:
                self._out.write(data)
                self._out.flush()
            except (OSError, ValueError):
                os._exit(1)

    def exit(self, code: int) -> NoReturn:
        """Exit at a line boundary (no half-written stdout line)."""
        with self._write_lock:
            sys.stderr.flush()
            os._exit(code)

    def die(self, message: str, code: int = 1) -> NoReturn:
        with self._write_lock:
            sys.stderr.write(message + "\n")
            sys.stderr.flush()
            os._exit(code)

    def _line(self, kind: str, **fields: Any) -> JSON:
        return {"type": kind, **fields, "session_id": self.session_id, "uuid": new_uuid()}

    def _stream_event(self, event: JSON) -> None:
        if self.cfg.partial:
            self.emit(self._line("stream_event", event=event, parent_tool_use_id=None))

    def _user_line(self, content: Any, **extra: Any) -> None:
        self.emit(
            self._line(
                "user",
                message={"role": "user", "content": content},
                parent_tool_use_id=None,
                timestamp=timestamp(),
                **extra,
            )
        )

    # ------------------------------------------------------------------ stdin

    def run(self) -> None:
        """Serve until stdin EOF (then the worker exits the process) or a fatal line."""
        worker = threading.Thread(target=self._guard, args=(self._work,), daemon=True)
        worker.start()
        self._guard(self._read_stdin)
        worker.join()

    def _guard(self, target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException:
            import traceback

            traceback.print_exc()
            self.exit(70)

    def _read_stdin(self) -> None:
        for raw in iter(sys.stdin.buffer.readline, b""):
            line = raw.decode("utf-8", "replace").strip()
            if line:
                self._handle_line(line)
        with self._wake:
            self._eof = True
            for pending in self._pending.values():
                pending.resolve("closed")
            self._wake.notify_all()

    def _handle_line(self, line: str) -> None:
        try:
            obj = json.loads(line)
        except ValueError as exc:
            detail = getattr(exc, "msg", str(exc))
            self.die(
                f"Error parsing streaming input line: {line}: "
                f"SyntaxError: JSON Parse error: {detail}"
            )
        if not isinstance(obj, dict):
            return
        kind = obj.get("type")
        if kind == "user":
            if obj.get("message") is None:
                self.die("TypeError: undefined is not an object (evaluating 't.message.role')")
            with self._wake:
                self._inbox.append(user_text(obj["message"]))
                self._wake.notify_all()
        elif kind == "control_request":
            self._on_control_request(obj)
        elif kind == "control_response":
            self._on_control_response(obj.get("response"))

    def _on_control_response(self, response: Any) -> None:
        if not isinstance(response, dict):
            return
        with self._lock:
            pending = self._pending.get(str(response.get("request_id")))
            if pending is None:
                return
            if response.get("subtype") == "error":
                pending.resolve("error", error=str(response.get("error", "")))
            else:
                pending.resolve("success", response.get("response"))

    # ------------------------------------------------------------------ control requests

    def _on_control_request(self, obj: JSON) -> None:
        request_id = obj.get("request_id")
        request = obj.get("request")
        subtype = request.get("subtype") if isinstance(request, dict) else None
        body = request if isinstance(request, dict) else {}
        if subtype == "interrupt":
            self._interrupt(request_id)
        elif subtype == "initialize":
            self._initialize(request_id, body)
        elif subtype == "set_permission_mode":
            self._set_permission_mode(request_id, body.get("mode"))
        elif subtype == "set_model":
            self.model = resolve_model(body.get("model"))
            self._reply(request_id)
            self._user_line(
                f"<local-command-stdout>Set model to {self.model}</local-command-stdout>",
                isReplay=True,
            )
        elif subtype == "set_max_thinking_tokens":
            self._reply(request_id)
        elif subtype == "mcp_status":
            self._reply(request_id, {"mcpServers": self.mcp})
        elif subtype == "end_session":
            self._reply(request_id)
            self.exit(0)
        else:
            self._reply_error(request_id, f"Unsupported control request subtype: {subtype}")

    def _reply(self, request_id: Any, body: JSON | None = None) -> None:
        response: JSON = {"subtype": "success", "request_id": request_id}
        if body is not None:
            response["response"] = body
        self.emit({"type": "control_response", "response": response})

    def _reply_error(self, request_id: Any, error: str) -> None:
        self.emit(
            {
                "type": "control_response",
                "response": {"subtype": "error", "request_id": request_id, "error": error},
            }
        )

    def _initialize(self, request_id: Any, body: JSON) -> None:
        if self.initialized:
            self._reply_error(request_id, "Already initialized")
            return
        self.initialized = True
        hooks = body.get("hooks")
        for event, matchers in hooks.items() if isinstance(hooks, dict) else ():
            for entry in matchers if isinstance(matchers, list) else ():
                if isinstance(entry, dict):
                    ids = [str(i) for i in entry.get("hookCallbackIds") or []]
                    self.hooks.setdefault(str(event), []).append((entry.get("matcher"), ids))
        self._reply(
            request_id,
            {
                "commands": [
                    {
                        "name": "compact",
                        "description": "Clear conversation history but keep a summary in context",
                        "argumentHint": "",
                    }
                ],
                "agents": [{"name": "general-purpose", "description": "General-purpose agent"}],
                "output_style": "default",
                "available_output_styles": ["default", "Proactive", "Explanatory", "Learning"],
                "models": [
                    {
                        "value": "default",
                        "resolvedModel": DEFAULT_MODEL,
                        "displayName": "Default (recommended)",
                        "description": "Opus",
                    },
                    {
                        "value": "sonnet",
                        "resolvedModel": MODEL_ALIASES["sonnet"],
                        "displayName": "Sonnet",
                        "description": "Sonnet",
                    },
                ],
                "account": {
                    "tokenSource": "none",
                    "apiKeySource": "ANTHROPIC_API_KEY",
                    "apiProvider": "firstParty",
                },
                "pid": os.getpid(),
            },
        )

    def _set_permission_mode(self, request_id: Any, mode: Any) -> None:
        if mode not in PERMISSION_MODES:
            self._reply_error(request_id, f"Invalid permission mode: {mode}")
            return
        self.permission_mode = str(mode)
        self._reply(request_id, {"mode": mode})
        self.emit(self._line("system", subtype="status", status=None, permissionMode=mode))

    def _interrupt(self, request_id: Any) -> None:
        # Under the state lock, so the cancel and the ack precede anything the turn writes next.
        with self._lock:
            turn = self._current
            pending = turn.pending if turn else None
            if pending is not None:
                self.emit({"type": "control_cancel_request", "request_id": pending.request_id})
            if request_id is not None:
                self._reply(request_id)
            if turn is not None:
                turn.interrupted.set()
            if pending is not None:
                pending.resolve("cancelled")

    def on_sigint(self) -> None:
        """SIGINT mid-turn acts like ``interrupt`` and exits 0 after the turn; idle: exit 0."""
        with self._lock:
            if self._current is None:
                self.exit(0)
            self._exit_after_turn = True
        self._interrupt(None)

    def _ask_host(self, turn: Turn, request: JSON) -> Pending:
        """Send a control request and block until it is answered, cancelled or stdin closes."""
        pending = Pending(new_uuid())
        with self._lock:
            if turn.interrupted.is_set():
                pending.resolve("cancelled")
            elif self._eof:
                pending.resolve("closed")
            else:
                self._pending[pending.request_id] = pending
                turn.pending = pending
                self.emit(
                    {
                        "type": "control_request",
                        "request_id": pending.request_id,
                        "request": request,
                    }
                )
        pending.done.wait()
        with self._lock:
            turn.pending = None
            self._pending.pop(pending.request_id, None)
        return pending

    # ------------------------------------------------------------------ worker

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._inbox and not self._eof:
                    self._wake.wait()
                if not self._inbox:
                    break
                self._turns += 1
                turn = Turn(self._turns, self._inbox.popleft())
                self._current = turn
            self._run_turn(turn)
            with self._lock:
                self._current = None
                leave = self._exit_after_turn
            if leave:
                self.exit(0)
        code = self.cfg.exit_code
        self.exit(code if code is not None else int(self._last_error))

    def _run_turn(self, turn: Turn) -> None:
        if self.cfg.stderr_flood:
            flood_stderr(self.cfg.stderr_flood)
        self.history.append(turn.text)
        self._record("user", {"role": "user", "content": turn.text})
        turn.input_tokens = len(turn.text.split()) + 5
        self.emit(
            self._line(
                "system",
                subtype="init",
                cwd=self.cwd,
                tools=self.tools,
                mcp_servers=self.mcp,
                model=self.model,
                permissionMode=self.permission_mode,
                slash_commands=["compact", "context", "cost", "init", "review"],
                apiKeySource="ANTHROPIC_API_KEY",
                claude_code_version=VERSION,
                output_style="default",
                agents=["general-purpose"],
                skills=[],
                plugins=[],
                fast_mode_state="off",
            )
        )
        if not self._run_hooks(turn, "UserPromptSubmit", {"prompt": turn.text}):
            self._end_interrupted(turn, "aborted_streaming")
        elif self.cfg.hang:
            turn.interrupted.wait()
            self._end_interrupted(turn, "aborted_streaming")
        elif "RUN_READ: " in turn.text:
            path = turn.text.split("RUN_READ: ", 1)[1].strip()
            self._tool_turn(turn, "Read", {"file_path": path})
        elif "RUN: " in turn.text:
            cmd = turn.text.split("RUN: ", 1)[1].strip()
            self._tool_turn(turn, "Bash", {"command": cmd, "description": "fake command"})
        else:
            self._answer(turn, self._reply_text(turn.text))

    def _reply_text(self, text: str) -> str:
        if "what did i say first" in text.lower():
            return f"first: {self.history[0]}"
        return f"echo: {text}"

    def _answer(self, turn: Turn, text: str) -> None:
        """The final model response of a turn, then Stop hooks and the result."""
        blocks = [text_block(text)]
        if self.cfg.big_line:
            big = ("0123456789abcdef" * (self.cfg.big_line // 16 + 1))[: self.cfg.big_line]
            blocks.insert(0, text_block(big, [big]))
        if not self._respond(turn, blocks, "end_turn"):
            self._end_interrupted(turn, "aborted_streaming")
            return
        self._record("assistant", {"role": "assistant", "content": [b.block for b in blocks]})
        if not self._run_hooks(
            turn, "Stop", {"stop_hook_active": False, "last_assistant_message": text}
        ):
            self._end_interrupted(turn, "aborted_streaming")
            return
        self._result(
            turn,
            subtype="success",
            is_error=False,
            terminal_reason="completed",
            stop_reason="end_turn",
            text=text,
        )

    # ------------------------------------------------------------------ streaming

    def _respond(self, turn: Turn, blocks: list[Block], stop_reason: str) -> bool:
        """Emit one model response; False if it was interrupted (partial text flushed)."""
        turn.round_trips += 1
        if turn.interrupted.is_set():
            return False
        message: JSON = {
            "id": "msg_fake" + uuid.uuid4().hex[:20],
            "type": "message",
            "role": "assistant",
            "model": api_model(self.model),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self._usage(turn.input_tokens, 1),
        }
        if self.cfg.partial:
            self.emit(self._line("system", subtype="status", status="requesting"))
        self._stream_event({"type": "message_start", "message": message})
        outputs = 0
        for index, block in enumerate(blocks):
            if not self._stream_block(turn, message, index, block):
                return False
            outputs += len(block.pieces)
        turn.output_tokens += outputs
        self._stream_event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": outputs},
            }
        )
        self._stream_event({"type": "message_stop"})
        return True

    def _stream_block(self, turn: Turn, message: JSON, index: int, block: Block) -> bool:
        is_text = block.block["type"] == "text"
        start = {"type": "text", "text": ""} if is_text else {**block.block, "input": {}}
        self._stream_event({"type": "content_block_start", "index": index, "content_block": start})
        sent = ""
        for number, piece in enumerate(block.pieces):
            if is_text and number and self._pause(turn):
                if sent:
                    self._assistant(message, {"type": "text", "text": sent}, number)
                return False
            delta = (
                {"type": "text_delta", "text": piece}
                if is_text
                else {"type": "input_json_delta", "partial_json": piece}
            )
            self._stream_event({"type": "content_block_delta", "index": index, "delta": delta})
            sent += piece
            if is_text:
                self._after_delta(turn)
        self._assistant(message, block.block, len(block.pieces))
        self._stream_event({"type": "content_block_stop", "index": index})
        return True

    def _pause(self, turn: Turn) -> bool:
        """Wait ``--fake-slow`` seconds before the next delta; True if interrupted meanwhile."""
        if self.cfg.slow:
            return turn.interrupted.wait(self.cfg.slow)
        return turn.interrupted.is_set()

    def _after_delta(self, turn: Turn) -> None:
        turn.deltas += 1
        if turn.deltas == 1 and turn.number == self.cfg.crash_after:
            with self._write_lock:
                sys.stderr.write("fake agent: simulated crash\n")
                sys.stderr.flush()
                os._exit(CRASH_RC)

    def _assistant(self, message: JSON, block: JSON, output_tokens: int) -> None:
        full = {
            **message,
            "content": [block],
            "context_management": None,
            "usage": self._usage(message["usage"]["input_tokens"], output_tokens),
        }
        self.emit(self._line("assistant", message=full, parent_tool_use_id=None))

    @staticmethod
    def _usage(input_tokens: int, output_tokens: int) -> JSON:
        return {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    # ------------------------------------------------------------------ tools

    def _tool_turn(self, turn: Turn, tool: str, tool_input: JSON) -> None:
        tool_id = "toolu_fake" + uuid.uuid4().hex[:20]
        use = {"type": "tool_use", "id": tool_id, "name": tool, "input": tool_input}
        if not self._respond(turn, [Block(use, [json.dumps(tool_input)])], "tool_use"):
            self._end_interrupted(turn, "aborted_streaming")
            return
        verdict = self._authorize(turn, tool, tool_input, tool_id)
        if verdict.kind == "interrupt":
            self._tool_result(tool_id, REJECTED, is_error=True)
            self._end_interrupted(turn, "aborted_tools")
            return
        if verdict.kind == "run":
            output, is_error, detail = self._execute(tool, verdict.input)
            self._tool_result(tool_id, output, is_error=is_error, detail=detail)
        else:
            self._tool_result(tool_id, verdict.message, is_error=True)
        if self.cfg.max_turns is not None and self.cfg.max_turns < 2:
            limit = f"Reached maximum number of turns ({self.cfg.max_turns})"
            self._result(
                turn,
                subtype="error_max_turns",
                is_error=True,
                terminal_reason="max_turns",
                stop_reason="tool_use",
                errors=[limit],
            )
            return
        subject = verdict.input.get("command" if tool == "Bash" else "file_path")
        if subject is None:
            subject = tool_input.get("command" if tool == "Bash" else "file_path")
        self._answer(turn, f"done: {subject}")

    def _authorize(self, turn: Turn, tool: str, tool_input: JSON, tool_id: str) -> Verdict:
        """Hooks first, then rules and mode, then ``can_use_tool`` (never for read-only tools)."""
        target = str(tool_input.get("command" if tool == "Bash" else "file_path", ""))
        if tool not in self.tools:
            return Verdict(
                "error", f"<tool_use_error>Error: No such tool available: {tool}</tool_use_error>"
            )
        decision, reason = self._pre_tool_use(turn, tool, tool_input, tool_id)
        if decision == "interrupt":
            return Verdict("interrupt")
        if decision == "deny":
            return self._deny(turn, tool, tool_input, tool_id, reason or "Blocked by hook")
        if any(rule_matches(r, tool, target) for r in self.cfg.disallowed):
            return self._deny(
                turn,
                tool,
                tool_input,
                tool_id,
                f"Permission to use {tool} with command {target} has been denied.",
            )
        if (
            decision == "allow"
            or tool in READ_ONLY_TOOLS
            or self.permission_mode == "bypassPermissions"
            or any(rule_matches(r, tool, target) for r in self.cfg.allowed)
        ):
            return Verdict("run", tool_input=tool_input)
        if self.permission_mode == "dontAsk":
            return self._deny(
                turn,
                tool,
                tool_input,
                tool_id,
                f"Permission to use {tool} has been denied because Claude Code is "
                "running in don't ask mode.",
            )
        if self.cfg.prompt_tool != "stdio":
            return self._deny(turn, tool, tool_input, tool_id, "This command requires approval")
        return self._can_use_tool(turn, tool, tool_input, tool_id, target)

    def _deny(
        self,
        turn: Turn,
        tool: str,
        tool_input: JSON,
        tool_id: str,
        message: str,
        kind: str = "deny",
    ) -> Verdict:
        turn.denials.append({"tool_name": tool, "tool_use_id": tool_id, "tool_input": tool_input})
        return Verdict(kind, message)

    def _pre_tool_use(
        self, turn: Turn, tool: str, tool_input: JSON, tool_id: str
    ) -> tuple[str | None, str]:
        """Ask every matching PreToolUse hook; a deny wins over an allow."""
        decision: str | None = None
        reason = ""
        for callback_id in self._callbacks("PreToolUse", tool):
            answer = self._ask_host(
                turn,
                self._hook_request(
                    callback_id,
                    "PreToolUse",
                    {"tool_name": tool, "tool_input": tool_input, "tool_use_id": tool_id},
                    tool_id,
                ),
            )
            if answer.outcome == "cancelled":
                return "interrupt", ""
            verdict, why = hook_decision(answer.body)
            if verdict == "deny":
                return "deny", why
            if verdict == "allow":
                decision, reason = "allow", why
        return decision, reason

    def _can_use_tool(
        self, turn: Turn, tool: str, tool_input: JSON, tool_id: str, target: str
    ) -> Verdict:
        answer = self._ask_host(
            turn,
            {
                "subtype": "can_use_tool",
                "tool_name": tool,
                "display_name": tool,
                "input": tool_input,
                "description": str(tool_input.get("description", tool)),
                "permission_suggestions": [
                    {
                        "type": "addRules",
                        "rules": [{"toolName": tool, "ruleContent": target}],
                        "behavior": "allow",
                        "destination": "localSettings",
                    }
                ],
                "decision_reason": "This command requires approval",
                "decision_reason_type": "other",
                "tool_use_id": tool_id,
            },
        )
        if answer.outcome == "cancelled":
            return Verdict("interrupt")
        if answer.outcome == "closed":
            return Verdict(
                "error",
                "Tool permission request failed: Error: Tool permission "
                "stream closed before response received",
            )
        if answer.outcome == "error":
            return Verdict("error", f"Tool permission request failed: Error: {answer.error}")
        body = answer.body
        behavior = body.get("behavior")
        if behavior == "allow" and isinstance(body.get("updatedInput"), dict):
            return Verdict("run", tool_input=body["updatedInput"])
        if behavior == "deny":
            kind = "interrupt" if body.get("interrupt") else "deny"
            return self._deny(turn, tool, tool_input, tool_id, str(body.get("message", "")), kind)
        return Verdict("error", "Tool permission request failed: " + zod_error(body))

    def _execute(self, tool: str, tool_input: JSON) -> tuple[str, bool, Any]:
        """Pretend to run the tool: (tool_result content, is_error, tool_use_result)."""
        if tool == "Read":
            return read_head(self.cwd, tool_input.get("file_path"))
        cmd = str(tool_input.get("command", ""))
        if cmd.startswith("touch "):
            try:
                for name in shlex.split(cmd[len("touch ") :]):
                    (Path(self.cwd) / name).touch()
            except (OSError, ValueError) as exc:
                return f"touch: {exc}", True, f"Error: touch: {exc}"
        output = f"ran: {cmd}"
        return (
            output,
            False,
            {
                "stdout": output,
                "stderr": "",
                "interrupted": False,
                "isImage": False,
                "noOutputExpected": False,
            },
        )

    def _tool_result(
        self, tool_id: str, content: str, *, is_error: bool, detail: Any = None
    ) -> None:
        block = {
            "tool_use_id": tool_id,
            "type": "tool_result",
            "content": content,
            "is_error": is_error,
        }
        self._user_line([block], tool_use_result=f"Error: {content}" if detail is None else detail)

    # ------------------------------------------------------------------ hooks

    def _callbacks(self, event: str, tool: str | None) -> list[str]:
        return [
            callback
            for matcher, ids in self.hooks.get(event, [])
            if hook_matches(matcher, tool)
            for callback in ids
        ]

    def _hook_request(
        self, callback_id: str, event: str, fields: JSON, tool_id: str | None
    ) -> JSON:
        hook_input = {
            "session_id": self.session_id,
            "transcript_path": str(self.transcript),
            "cwd": self.cwd,
            "permission_mode": self.permission_mode,
            "hook_event_name": event,
            **fields,
        }
        request: JSON = {
            "subtype": "hook_callback",
            "callback_id": callback_id,
            "input": hook_input,
        }
        if tool_id is not None:
            request["tool_use_id"] = tool_id
        return request

    def _run_hooks(self, turn: Turn, event: str, fields: JSON) -> bool:
        """Fire the hooks of a tool-less event (answers are ignored); False if interrupted."""
        for callback_id in self._callbacks(event, None):
            answer = self._ask_host(turn, self._hook_request(callback_id, event, fields, None))
            if answer.outcome == "cancelled":
                return False
        return True

    # ------------------------------------------------------------------ turn endings

    def _end_interrupted(self, turn: Turn, terminal_reason: str) -> None:
        tools = terminal_reason == "aborted_tools"
        marker = "[Request interrupted by user" + (" for tool use]" if tools else "]")
        self._user_line([{"type": "text", "text": marker}])
        self._result(
            turn,
            subtype="error_during_execution",
            is_error=True,
            terminal_reason=terminal_reason,
            stop_reason="tool_use" if tools else None,
            errors=[f"[ede_diagnostic] fake agent: turn interrupted ({terminal_reason})"],
        )

    def _result(
        self,
        turn: Turn,
        *,
        subtype: str,
        is_error: bool,
        terminal_reason: str,
        stop_reason: str | None,
        text: str | None = None,
        errors: list[str] | None = None,
    ) -> None:
        duration = int((time.monotonic() - turn.started) * 1000)
        self._cost = round(self._cost + COST_PER_TURN, 10)
        self._api_ms += duration
        usage = self._model_usage.setdefault(
            self.model,
            {
                "inputTokens": 0,
                "outputTokens": 0,
                "cacheReadInputTokens": 0,
                "cacheCreationInputTokens": 0,
                "webSearchRequests": 0,
                "costUSD": 0.0,
                "contextWindow": 1000000 if self.model.endswith("[1m]") else 200000,
                "maxOutputTokens": 64000,
            },
        )
        usage["inputTokens"] += turn.input_tokens
        usage["outputTokens"] += turn.output_tokens
        usage["costUSD"] = round(usage["costUSD"] + COST_PER_TURN, 10)
        line: JSON = {
            "type": "result",
            "subtype": subtype,
            "is_error": is_error,
            "api_error_status": None,
            "duration_ms": duration,
            "duration_api_ms": self._api_ms,
            "num_turns": max(1, turn.round_trips),
            "stop_reason": stop_reason,
            "session_id": self.session_id,
            "total_cost_usd": self._cost,
            "usage": {
                **self._usage(turn.input_tokens, turn.output_tokens),
                "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
            },
            "modelUsage": {name: dict(u) for name, u in self._model_usage.items()},
            "permission_denials": turn.denials,
            "terminal_reason": terminal_reason,
            "fast_mode_state": "off",
            "uuid": new_uuid(),
        }
        if text is not None:
            line["result"] = text
        if errors:
            line["errors"] = errors
        self._last_error = is_error
        if not self.cfg.no_result:
            self.emit(line)
        if self.cfg.leak_pipe:
            self.exit(0)

    def _record(self, kind: str, message: JSON) -> None:
        """Append one transcript entry (only what ``--resume`` needs, in the real CLI's shape)."""
        entry_uuid = new_uuid()
        entry = {
            "parentUuid": self._parent_uuid,
            "isSidechain": False,
            "userType": "external",
            "cwd": self.cwd,
            "sessionId": self.session_id,
            "version": VERSION,
            "gitBranch": "",
            "entrypoint": "sdk-cli",
            "type": kind,
            "message": message,
            "uuid": entry_uuid,
            "timestamp": timestamp(),
        }
        if kind == "user":
            entry.update(promptSource="sdk", permissionMode=self.permission_mode)
        self._parent_uuid = entry_uuid
        self.transcript.parent.mkdir(parents=True, exist_ok=True)
        with self.transcript.open("a", encoding="utf-8") as file:
            file.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def _tool_list(self) -> list[str]:
        tools = list(BASE_TOOLS) if self.cfg.tools is None else list(self.cfg.tools)
        if self.cfg.prompt_tool == "stdio" and self.cfg.tools is None:
            tools += STDIO_TOOLS
        removed = {rule for rule in self.cfg.disallowed if "(" not in rule}
        return [tool for tool in tools if tool and tool not in removed]


def hook_decision(body: JSON) -> tuple[str | None, str]:
    """(allow | deny | ask | None, reason) from a PreToolUse hook answer."""
    specific = body.get("hookSpecificOutput")
    if isinstance(specific, dict) and specific.get("permissionDecision"):
        return (
            str(specific["permissionDecision"]),
            str(specific.get("permissionDecisionReason") or ""),
        )
    legacy = {"block": "deny", "approve": "allow"}.get(str(body.get("decision")))
    return legacy, str(body.get("reason") or "")


def zod_error(body: JSON) -> str:
    """The ZodError the real CLI reports for a permission answer that fails its schema."""
    if body.get("behavior") == "allow":
        issue: JSON = {
            "code": "invalid_type",
            "expected": "record",
            "received": "undefined",
            "path": ["updatedInput"],
            "message": "Required",
        }
    else:
        issue = {
            "code": "invalid_union",
            "errors": [],
            "note": "No matching discriminator",
            "values": ["allow"],
            "path": ["behavior"],
            "message": "Invalid input",
        }
    return "ZodError: " + json.dumps([issue], indent=2)


def read_head(cwd: str, file_path: Any) -> tuple[str, bool, Any]:
    """The Read tool: the first 100 bytes of the file, or the tool error."""
    if not isinstance(file_path, str) or not file_path:
        message = "<tool_use_error>InputValidationError: file_path is required</tool_use_error>"
        return message, True, f"Error: {message}"
    path = Path(cwd) / file_path
    try:
        with path.open("rb") as file:
            content = file.read(READ_LIMIT).decode("utf-8", "replace")
    except FileNotFoundError:
        message = "<tool_use_error>File does not exist.</tool_use_error>"
        return message, True, f"Error: {message}"
    except OSError as exc:
        message = f"<tool_use_error>{exc}</tool_use_error>"
        return message, True, f"Error: {message}"
    lines = content.count("\n") + 1
    return (
        content,
        False,
        {
            "type": "text",
            "file": {
                "filePath": str(path),
                "content": content,
                "numLines": lines,
                "startLine": 1,
                "totalLines": lines,
            },
        },
    )


# ----------------------------------------------------------------------------- start-up


def resume_failure(session_id: str) -> int:
    """What the real CLI does for ``--resume`` of an unknown id: an error result, then rc 1."""
    message = f"No conversation found with session ID: {session_id}"
    line = {
        "type": "result",
        "subtype": "error_during_execution",
        "is_error": True,
        "duration_ms": 0,
        "duration_api_ms": 0,
        "num_turns": 0,
        "stop_reason": None,
        "session_id": session_id,
        "total_cost_usd": 0,
        "usage": FakeAgent._usage(0, 0),
        "modelUsage": {},
        "permission_denials": [],
        "errors": [message],
        "uuid": new_uuid(),
    }
    sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    sys.stderr.write(message + "\n")
    return 1


def install_sigterm(cfg: Config) -> None:
    """The real CLI exits rc 143 on SIGTERM at once (no more stdout)."""
    if cfg.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda _sig, _frame: os._exit(143))


def install_sigint(agent: FakeAgent) -> None:
    def on_sigint(_sig: int, _frame: Any) -> None:
        # The handler runs in the reader thread, which may hold the locks; hand off.
        threading.Thread(target=agent.on_sigint, daemon=True).start()

    signal.signal(signal.SIGINT, on_sigint)


def main(argv: list[str] | None = None) -> int:
    """Entry point: validate like the real CLI, set up the switches, then serve stdin."""
    args = sys.argv[1:] if argv is None else argv
    if "--version" in args or "-v" in args:  # as the real CLI answers `hotplex doctor`
        sys.stdout.write(f"{VERSION} (Claude Code)\n")
        return 0
    cfg = parse_args(args)
    error = startup_error(cfg)
    if error is not None:
        sys.stderr.write(error + "\n")
        return 1
    install_sigterm(cfg)
    if cfg.dump_env:
        write_atomically(cfg.dump_env, json.dumps(dict(os.environ)))
    children = spawn_children(cfg)  # before any thread exists: fork is only safe then
    if cfg.pid_file:
        write_atomically(cfg.pid_file, "".join(f"{pid}\n" for pid in [os.getpid(), *children]))
    history: list[str] = []
    session_id = cfg.session_id or new_uuid()
    if cfg.resume is not None:
        session_id = cfg.resume
        path = transcript_path(os.getcwd(), session_id)
        if not UUID_RE.match(session_id) or not path.is_file():
            return resume_failure(session_id)
        history = load_history(path)
    agent = FakeAgent(cfg, session_id, history)
    install_sigint(agent)
    agent.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
