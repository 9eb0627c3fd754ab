"""The fake Claude Code CLI, run as a real subprocess: protocol behaviour and every fault switch."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hotplex.testing.fake_agent import command

JSON = dict[str, Any]
TIMEOUT = 5.0
SESSION = "7e5a360e-29e8-4222-b8a3-d6597124e6f3"
STREAM_FLAGS = (
    "-p",
    "--input-format",
    "stream-json",
    "--output-format",
    "stream-json",
    "--verbose",
    "--include-partial-messages",
)
BASE_FLAGS = (*STREAM_FLAGS, "--permission-prompt-tool", "stdio")


class Agent:
    """One fake agent process in its own session; threads drain stdout (parsed) and stderr."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
        self.lines: queue.Queue[JSON | None] = queue.Queue()
        self._stderr = bytearray()
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(json.loads(raw))
        self.lines.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        while chunk := os.read(fd, 65536):
            self._stderr.extend(chunk)

    # -- input

    def send(self, obj: JSON) -> None:
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def user(self, text: str) -> None:
        self.send({"type": "user", "message": {"role": "user", "content": text}})

    def control(self, subtype: str, request_id: str = "req_1", **fields: Any) -> None:
        self.send(
            {
                "type": "control_request",
                "request_id": request_id,
                "request": {"subtype": subtype, **fields},
            }
        )

    def answer(self, request_id: str, body: JSON) -> None:
        self.send(
            {
                "type": "control_response",
                "response": {"subtype": "success", "request_id": request_id, "response": body},
            }
        )

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    # -- output

    def next(self, timeout: float = TIMEOUT) -> JSON | None:
        """The next stdout line (None at EOF)."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no stdout line within {timeout} s") from None

    def until(self, done: Callable[[JSON], bool], timeout: float = TIMEOUT) -> list[JSON]:
        """Lines up to and including the first one for which ``done`` is true."""
        deadline = time.monotonic() + timeout
        seen: list[JSON] = []
        while True:
            line = self.next(max(0.0, deadline - time.monotonic()))
            assert line is not None, f"stdout closed early after {seen}"
            seen.append(line)
            if done(line):
                return seen

    def rest(self, timeout: float = TIMEOUT) -> list[JSON]:
        """All lines until stdout EOF."""
        deadline = time.monotonic() + timeout
        seen: list[JSON] = []
        while (line := self.next(max(0.0, deadline - time.monotonic()))) is not None:
            seen.append(line)
        return seen

    def turn(self, text: str) -> list[JSON]:
        self.user(text)
        return self.until(is_result)

    def wait(self, timeout: float = TIMEOUT) -> int:
        return self.proc.wait(timeout=timeout)

    def stderr(self) -> str:
        """Everything written to stderr; call after the process has exited."""
        self._threads[1].join(timeout=TIMEOUT)
        return self._stderr.decode(errors="replace")

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=TIMEOUT)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except BrokenPipeError:
                    pass


# ----------------------------------------------------------------------------- helpers


def is_result(line: JSON) -> bool:
    return bool(line["type"] == "result")


def of_type(lines: list[JSON], kind: str, subtype: str | None = None) -> list[JSON]:
    return [x for x in lines if x["type"] == kind and subtype in (None, x.get("subtype"))]


def deltas(lines: list[JSON]) -> list[str]:
    return [
        x["event"]["delta"]["text"]
        for x in of_type(lines, "stream_event")
        if x["event"]["type"] == "content_block_delta"
        and x["event"]["delta"]["type"] == "text_delta"
    ]


def assistant_blocks(lines: list[JSON]) -> list[JSON]:
    return [block for x in of_type(lines, "assistant") for block in x["message"]["content"]]


def tool_results(lines: list[JSON]) -> list[JSON]:
    return [
        block
        for x in of_type(lines, "user")
        for block in x["message"]["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]


def control_requests(lines: list[JSON], subtype: str) -> list[JSON]:
    return [x for x in of_type(lines, "control_request") if x["request"]["subtype"] == subtype]


def is_request(subtype: str) -> Callable[[JSON], bool]:
    return lambda x: x["type"] == "control_request" and x["request"]["subtype"] == subtype


def is_text_delta(line: JSON) -> bool:
    return bool(deltas([line]))


def gone(pid: int) -> bool:
    """True if ``pid`` no longer runs (absent or a zombie waiting for its reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def wait_gone(pid: int, timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while not gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def read_pids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "ws.dot_x"
    path.mkdir()
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CLAUDE_CONFIG_DIR": str(tmp_path / "config")}


@pytest.fixture
def spawn(workspace: Path, env: dict[str, str]) -> Iterator[Callable[..., Agent]]:
    """Start fake agents (BASE_FLAGS + switches); every process group is killed afterwards."""
    agents: list[Agent] = []

    def start(
        *switches: str,
        flags: tuple[str, ...] = BASE_FLAGS,
        cwd: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> Agent:
        agent = Agent(command(*flags, *switches), cwd or workspace, {**env, **(extra_env or {})})
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        agent.kill()


def run_to_exit(
    argv: list[str], cwd: Path, env: dict[str, str], stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        argv, input=stdin, capture_output=True, cwd=cwd, env=env, timeout=TIMEOUT, check=False
    )


# ----------------------------------------------------------------------------- conversation


def test_two_turns_stream_deltas_results_and_context(
    spawn: Callable[..., Agent], workspace: Path
) -> None:
    agent = spawn("--session-id", SESSION)
    first = agent.turn("hello there friend")
    second = agent.turn("what did I say first?")

    for lines in (first, second):
        init = lines[0]
        assert (init["type"], init["subtype"]) == ("system", "init")
        assert init["claude_code_version"] == "2.1.197"
        assert init["cwd"] == str(workspace)
        assert init["model"] and init["permissionMode"] == "default"
        assert "Bash" in init["tools"] and "AskUserQuestion" in init["tools"]
        assert of_type(lines, "system", "status")[0]["status"] == "requesting"
        assert {x["session_id"] for x in lines} == {SESSION}
        assert sum(map(is_result, lines)) == 1
        events = [x["event"]["type"] for x in of_type(lines, "stream_event")]
        assert events[:2] == ["message_start", "content_block_start"]
        assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert deltas(first) == ["echo: ", "hello ", "there ", "friend"]
    assert assistant_blocks(first) == [{"type": "text", "text": "echo: hello there friend"}]
    result1, result2 = first[-1], second[-1]
    assert result1["result"] == "echo: hello there friend"
    assert result2["result"] == "first: hello there friend"
    for result in (result1, result2):
        assert result["subtype"] == "success" and result["is_error"] is False
        assert result["terminal_reason"] == "completed" and result["stop_reason"] == "end_turn"
        assert result["num_turns"] == 1 and result["duration_ms"] >= 0
        assert result["usage"]["output_tokens"] > 0
    assert result1["total_cost_usd"] == pytest.approx(0.0002)
    assert result2["total_cost_usd"] == pytest.approx(0.0004)
    (usage,) = result2["modelUsage"].values()
    assert (
        usage["outputTokens"]
        == result1["usage"]["output_tokens"] + result2["usage"]["output_tokens"]
    )
    agent.close_stdin()
    assert agent.wait() == 0


def test_nothing_on_stdout_before_input_and_initialize_reply(spawn: Callable[..., Agent]) -> None:
    started = time.monotonic()
    agent = spawn()
    agent.control("initialize", "init_1", hooks={})
    reply = agent.next()
    assert time.monotonic() - started < 2.0
    assert reply is not None and reply["type"] == "control_response"
    assert reply["response"]["subtype"] == "success"
    assert reply["response"]["request_id"] == "init_1"
    assert reply["response"]["response"]["pid"] == agent.pid


def test_message_sent_during_a_turn_is_queued_as_its_own_turn(spawn: Callable[..., Agent]) -> None:
    agent = spawn("--fake-slow", "0.05")
    agent.user("one two three")
    agent.user("four five")
    lines = agent.until(is_result)
    lines += agent.until(is_result)
    kinds = [
        (x["type"], x.get("subtype"))
        for x in lines
        if x["type"] == "result" or x.get("subtype") == "init"
    ]
    assert kinds == [("system", "init"), ("result", "success")] * 2
    assert [x["result"] for x in of_type(lines, "result")] == [
        "echo: one two three",
        "echo: four five",
    ]


def test_stdin_eof_mid_turn_finishes_the_turn(spawn: Callable[..., Agent]) -> None:
    agent = spawn("--fake-slow", "0.05")
    agent.user("a b c d e")
    agent.close_stdin()
    result = agent.until(is_result)[-1]
    assert result["result"] == "echo: a b c d e"
    assert agent.wait() == 0


def test_unknown_lines_ignored_and_unknown_control_rejected(spawn: Callable[..., Agent]) -> None:
    agent = spawn()
    agent.send({"type": "keep_alive"})
    agent.send({"type": "bogus"})
    agent.control("no_such_thing", "bad_1")
    reply = agent.next()
    assert reply == {
        "type": "control_response",
        "response": {
            "subtype": "error",
            "request_id": "bad_1",
            "error": "Unsupported control request subtype: no_such_thing",
        },
    }
    agent.control("interrupt", "int_idle")
    assert agent.next() == {
        "type": "control_response",
        "response": {"subtype": "success", "request_id": "int_idle"},
    }
    assert agent.turn("still here")[-1]["result"] == "echo: still here"


def test_set_model_set_permission_mode_and_end_session(spawn: Callable[..., Agent]) -> None:
    agent = spawn()
    agent.control("set_permission_mode", "m1", mode="acceptEdits")
    reply = agent.next()
    assert reply is not None and reply["response"]["response"] == {"mode": "acceptEdits"}
    status = agent.next()
    assert status is not None and status["permissionMode"] == "acceptEdits"
    agent.control("set_model", "m2", model="sonnet")
    lines = agent.until(lambda x: x["type"] == "user")
    assert lines[0]["response"]["subtype"] == "success"
    assert "Set model to claude-sonnet-5" in lines[-1]["message"]["content"]
    init = agent.turn("hi")[0]
    assert (init["model"], init["permissionMode"]) == ("claude-sonnet-5", "acceptEdits")
    agent.control("end_session", "end")
    assert agent.next() == {
        "type": "control_response",
        "response": {"subtype": "success", "request_id": "end"},
    }
    assert agent.wait() == 0


def test_real_cli_flags_accepted_and_unknown_flags_ignored(spawn: Callable[..., Agent]) -> None:
    agent = spawn(
        "--model",
        "sonnet",
        "--permission-mode",
        "default",
        "--allowedTools",
        "Bash(touch *)",
        "--disallowedTools",
        "Bash(rm *)",
        "--append-system-prompt",
        "be brief",
        "--strict-mcp-config",
        "--mcp-config",
        '{"mcpServers":{"echo":{"type":"stdio","command":"x"}}}',
        "--max-turns",
        "5",
        "--add-dir",
        "/tmp",
        "--some-future-flag",
        "value",
    )
    lines = agent.turn("hi")
    assert lines[0]["model"] == "claude-sonnet-5"
    assert lines[0]["mcp_servers"] == [{"name": "echo", "status": "connected"}]
    assert lines[-1]["result"] == "echo: hi"


# ----------------------------------------------------------------------------- start-up errors


def test_start_up_errors_like_the_real_cli(workspace: Path, env: dict[str, str]) -> None:
    no_verbose = run_to_exit(
        command("-p", "--input-format", "stream-json", "--output-format", "stream-json"),
        workspace,
        env,
    )
    assert no_verbose.returncode == 1 and no_verbose.stdout == b""
    assert b"Error: When using --print, --output-format=stream-json requires --verbose" in (
        no_verbose.stderr
    )
    bad_id = run_to_exit(command(*BASE_FLAGS, "--session-id", "not-a-uuid"), workspace, env)
    assert bad_id.returncode == 1
    assert bad_id.stderr.strip() == b"Error: Invalid session ID. Must be a valid UUID."
    idle = run_to_exit(command(*BASE_FLAGS), workspace, env)
    assert (idle.returncode, idle.stdout) == (0, b"")


def test_resume_restores_history_from_the_transcript(
    spawn: Callable[..., Agent], tmp_path: Path, workspace: Path, env: dict[str, str]
) -> None:
    first = spawn("--session-id", SESSION)
    first.turn("my secret word is PLUM")
    first.turn("second message")
    first.close_stdin()
    assert first.wait() == 0
    key = re.sub(r"[^A-Za-z0-9]", "-", os.path.realpath(workspace))
    assert key.endswith("-ws-dot-x")
    transcript = tmp_path / "config" / "projects" / key / f"{SESSION}.jsonl"
    assert transcript.is_file()

    second = spawn("--resume", SESSION)
    lines = second.turn("what did I say first")
    assert lines[0]["session_id"] == lines[-1]["session_id"] == SESSION
    assert lines[-1]["result"] == "first: my secret word is PLUM"
    second.close_stdin()
    assert second.wait() == 0

    in_use = run_to_exit(command(*BASE_FLAGS, "--session-id", SESSION), workspace, env)
    assert in_use.returncode == 1
    assert in_use.stderr.strip().decode() == f"Error: Session ID {SESSION} is already in use."

    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    missing = run_to_exit(command(*BASE_FLAGS, "--resume", SESSION), elsewhere, env)
    assert missing.returncode == 1
    assert f"No conversation found with session ID: {SESSION}".encode() in missing.stderr
    result = json.loads(missing.stdout.splitlines()[-1])
    assert (result["type"], result["subtype"], result["is_error"]) == (
        "result",
        "error_during_execution",
        True,
    )


# ----------------------------------------------------------------------------- stdin robustness


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"this is not json\n", "Error parsing streaming input line: this is not json"),
        (
            b'{"type":"user"}\n',
            "TypeError: undefined is not an object (evaluating 't.message.role')",
        ),
    ],
)
def test_bad_stdin_line_kills_the_process(
    spawn: Callable[..., Agent], line: bytes, message: str
) -> None:
    agent = spawn()
    agent.send_raw(line)
    assert agent.wait() == 1
    assert message in agent.stderr()
    assert agent.rest() == []


# ----------------------------------------------------------------------------- hooks and tools


def test_pre_tool_use_hook_deny_skips_can_use_tool(
    spawn: Callable[..., Agent], workspace: Path
) -> None:
    agent = spawn()
    agent.control(
        "initialize",
        "init",
        hooks={"PreToolUse": [{"matcher": "Bash", "hookCallbackIds": ["hook_0"]}]},
    )
    agent.next()
    agent.user("RUN: touch hooked.txt")
    lines = agent.until(is_request("hook_callback"))
    request = lines[-1]["request"]
    (tool_use,) = [b for b in assistant_blocks(lines) if b["type"] == "tool_use"]
    assert request["callback_id"] == "hook_0"
    assert request["tool_use_id"] == tool_use["id"]
    hook_input = request["input"]
    assert hook_input["hook_event_name"] == "PreToolUse"
    assert hook_input["tool_name"] == "Bash"
    assert hook_input["tool_input"] == {
        "command": "touch hooked.txt",
        "description": "fake command",
    }
    agent.answer(
        lines[-1]["request_id"],
        {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": "blocked by hook",
            }
        },
    )
    rest = agent.until(is_result)
    assert control_requests(rest, "can_use_tool") == []
    (tool_result,) = tool_results(rest)
    assert tool_result["content"] == "blocked by hook" and tool_result["is_error"] is True
    assert rest[-1]["result"] == "done: touch hooked.txt"
    assert not (workspace / "hooked.txt").exists()


@pytest.mark.parametrize(("decision", "asks"), [("allow", False), ("ask", True)])
def test_pre_tool_use_hook_allow_runs_and_ask_falls_through(
    spawn: Callable[..., Agent], workspace: Path, decision: str, asks: bool
) -> None:
    agent = spawn()
    agent.control(
        "initialize",
        "init",
        hooks={"PreToolUse": [{"matcher": None, "hookCallbackIds": ["hook_0"]}]},
    )
    agent.next()
    agent.user("RUN: touch hooked.txt")
    request = agent.until(is_request("hook_callback"))[-1]
    agent.answer(
        request["request_id"],
        {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": decision}},
    )
    if asks:
        ask = agent.until(is_request("can_use_tool"))[-1]
        agent.answer(
            ask["request_id"], {"behavior": "allow", "updatedInput": ask["request"]["input"]}
        )
    rest = agent.until(is_result)
    assert control_requests(rest, "can_use_tool") == []
    assert tool_results(rest)[0]["content"] == "ran: touch hooked.txt"
    assert (workspace / "hooked.txt").exists()


def test_can_use_tool_allow_runs_the_command(spawn: Callable[..., Agent], workspace: Path) -> None:
    agent = spawn()
    agent.user("RUN: touch made.txt")
    lines = agent.until(is_request("can_use_tool"))
    request = lines[-1]["request"]
    (tool_use,) = [b for b in assistant_blocks(lines) if b["type"] == "tool_use"]
    assert tool_use["name"] == "Bash"
    assert tool_use["input"] == {"command": "touch made.txt", "description": "fake command"}
    assert request["tool_name"] == "Bash" and request["input"] == tool_use["input"]
    assert request["tool_use_id"] == tool_use["id"]
    assert request["permission_suggestions"][0]["type"] == "addRules"
    assert not (workspace / "made.txt").exists()
    agent.answer(lines[-1]["request_id"], {"behavior": "allow", "updatedInput": request["input"]})
    rest = agent.until(is_result)
    (tool_result,) = tool_results(rest)
    assert tool_result == {
        "tool_use_id": tool_use["id"],
        "type": "tool_result",
        "content": "ran: touch made.txt",
        "is_error": False,
    }
    assert (workspace / "made.txt").exists()
    result = rest[-1]
    assert result["result"] == "done: touch made.txt"
    assert result["num_turns"] == 2 and result["permission_denials"] == []


def test_can_use_tool_allow_uses_the_updated_input(
    spawn: Callable[..., Agent], workspace: Path
) -> None:
    agent = spawn()
    agent.user("RUN: touch asked.txt")
    request = agent.until(is_request("can_use_tool"))[-1]
    agent.answer(
        request["request_id"],
        {
            "behavior": "allow",
            "updatedInput": {"command": "touch edited.txt", "description": "edited"},
        },
    )
    rest = agent.until(is_result)
    assert tool_results(rest)[0]["content"] == "ran: touch edited.txt"
    assert (workspace / "edited.txt").exists() and not (workspace / "asked.txt").exists()


def test_can_use_tool_deny_lists_the_denial(spawn: Callable[..., Agent], workspace: Path) -> None:
    agent = spawn()
    agent.user("RUN: touch nope.txt")
    request = agent.until(is_request("can_use_tool"))[-1]
    agent.answer(request["request_id"], {"behavior": "deny", "message": "user said no"})
    rest = agent.until(is_result)
    (tool_result,) = tool_results(rest)
    assert tool_result["content"] == "user said no" and tool_result["is_error"] is True
    result = rest[-1]
    assert result["subtype"] == "success" and result["result"] == "done: touch nope.txt"
    assert result["permission_denials"] == [
        {
            "tool_name": "Bash",
            "tool_use_id": request["request"]["tool_use_id"],
            "tool_input": {"command": "touch nope.txt", "description": "fake command"},
        }
    ]
    assert not (workspace / "nope.txt").exists()


def test_can_use_tool_deny_with_interrupt_aborts_the_turn(spawn: Callable[..., Agent]) -> None:
    agent = spawn()
    agent.user("RUN: touch nope.txt")
    request = agent.until(is_request("can_use_tool"))[-1]
    agent.answer(request["request_id"], {"behavior": "deny", "message": "stop", "interrupt": True})
    result = agent.until(is_result)[-1]
    assert (result["subtype"], result["is_error"], result["terminal_reason"]) == (
        "error_during_execution",
        True,
        "aborted_tools",
    )


def test_allow_without_updated_input_is_rejected(
    spawn: Callable[..., Agent], workspace: Path
) -> None:
    agent = spawn()
    agent.user("RUN: touch never.txt")
    request = agent.until(is_request("can_use_tool"))[-1]
    agent.answer(request["request_id"], {"behavior": "allow"})
    rest = agent.until(is_result)
    (tool_result,) = tool_results(rest)
    assert tool_result["is_error"] is True
    assert tool_result["content"].startswith("Tool permission request failed: ZodError")
    assert '"updatedInput"' in tool_result["content"]
    assert not (workspace / "never.txt").exists()


def test_host_error_and_closed_stdin_while_asking(spawn: Callable[..., Agent]) -> None:
    agent = spawn()
    agent.user("RUN: echo one")
    request = agent.until(is_request("can_use_tool"))[-1]
    agent.send(
        {
            "type": "control_response",
            "response": {
                "subtype": "error",
                "request_id": request["request_id"],
                "error": "host failed",
            },
        }
    )
    rest = agent.until(is_result)
    assert tool_results(rest)[0]["content"] == "Tool permission request failed: Error: host failed"
    agent.user("RUN: echo two")
    agent.until(is_request("can_use_tool"))
    agent.close_stdin()
    rest = agent.until(is_result)
    assert "stream closed before response received" in tool_results(rest)[0]["content"]
    assert agent.wait() == 0


def test_without_prompt_tool_bash_is_auto_denied_and_rules_apply(
    spawn: Callable[..., Agent], workspace: Path
) -> None:
    agent = spawn(
        "--allowedTools", "Bash(touch *)", "--disallowedTools", "Bash(rm *)", flags=STREAM_FLAGS
    )
    denied = agent.turn("RUN: echo hi")
    assert tool_results(denied)[0]["content"] == "This command requires approval"
    assert len(denied[-1]["permission_denials"]) == 1
    allowed = agent.turn("RUN: touch ruled.txt")
    assert tool_results(allowed)[0]["content"] == "ran: touch ruled.txt"
    assert (workspace / "ruled.txt").exists()
    forbidden = agent.turn("RUN: rm -f ruled.txt")
    assert tool_results(forbidden)[0]["is_error"] is True
    assert (workspace / "ruled.txt").exists()


def test_read_tool_is_not_asked_and_returns_the_file_head(
    spawn: Callable[..., Agent], workspace: Path
) -> None:
    (workspace / "notes.txt").write_text("x" * 150)
    agent = spawn()
    lines = agent.turn("RUN_READ: notes.txt")
    assert control_requests(lines, "can_use_tool") == []
    (tool_use,) = [b for b in assistant_blocks(lines) if b["type"] == "tool_use"]
    assert (tool_use["name"], tool_use["input"]) == ("Read", {"file_path": "notes.txt"})
    assert tool_results(lines)[0]["content"] == "x" * 100
    missing = agent.turn("RUN_READ: missing.txt")
    assert tool_results(missing)[0]["is_error"] is True


def test_max_turns_exceeded(spawn: Callable[..., Agent]) -> None:
    agent = spawn("--max-turns", "1", "--allowedTools", "Bash")
    result = agent.turn("RUN: echo hi")[-1]
    assert (result["subtype"], result["terminal_reason"]) == ("error_max_turns", "max_turns")
    agent.close_stdin()
    assert agent.wait() == 1


# ----------------------------------------------------------------------------- interrupts


def test_interrupt_mid_stream_flushes_and_stays_usable(spawn: Callable[..., Agent]) -> None:
    agent = spawn("--fake-slow", "0.2")
    agent.user(" ".join(f"word{i}" for i in range(30)))
    agent.until(is_text_delta)
    sent = time.monotonic()
    agent.control("interrupt", "int_1")
    lines = agent.until(is_result)
    assert time.monotonic() - sent < 1.0
    assert {
        "type": "control_response",
        "response": {"subtype": "success", "request_id": "int_1"},
    } in lines
    (partial,) = assistant_blocks(lines)
    assert partial["text"].startswith("echo: ") and "word29" not in partial["text"]
    markers = [x["message"]["content"][0]["text"] for x in of_type(lines, "user")]
    assert markers == ["[Request interrupted by user]"]
    result = lines[-1]
    assert (result["subtype"], result["is_error"], result["terminal_reason"]) == (
        "error_during_execution",
        True,
        "aborted_streaming",
    )
    assert "result" not in result and result["errors"]
    assert agent.turn("again")[-1]["result"] == "echo: again"


def test_interrupt_while_permission_pending_cancels_it(spawn: Callable[..., Agent]) -> None:
    agent = spawn()
    agent.user("RUN: touch x.txt")
    request = agent.until(is_request("can_use_tool"))[-1]
    agent.control("interrupt", "int_2")
    lines = agent.until(is_result)
    assert lines[0] == {"type": "control_cancel_request", "request_id": request["request_id"]}
    assert lines[1]["response"] == {"subtype": "success", "request_id": "int_2"}
    assert tool_results(lines)[0]["is_error"] is True
    assert lines[-1]["terminal_reason"] == "aborted_tools"
    assert lines[-1]["stop_reason"] == "tool_use"


def test_hang_until_interrupt_then_eof_exits_1(spawn: Callable[..., Agent]) -> None:
    agent = spawn("--fake-hang")
    agent.user("hello")
    agent.until(lambda x: x.get("subtype") == "init")
    agent.control("interrupt", "int_3")
    lines = agent.until(is_result)
    assert [x["type"] for x in lines] == ["control_response", "user", "result"]
    assert lines[-1]["terminal_reason"] == "aborted_streaming"
    agent.close_stdin()
    assert agent.wait() == 1


def test_sigint_mid_turn_acts_like_interrupt_then_exits_0(spawn: Callable[..., Agent]) -> None:
    agent = spawn("--fake-slow", "0.2")
    agent.user("one two three four five six seven eight")
    agent.until(is_text_delta)
    os.kill(agent.pid, signal.SIGINT)
    assert agent.until(is_result)[-1]["terminal_reason"] == "aborted_streaming"
    assert agent.wait() == 0


# ----------------------------------------------------------------------------- fault switches


def test_crash_after_second_turn_delta(spawn: Callable[..., Agent]) -> None:
    agent = spawn("--fake-crash-after", "2")
    assert agent.turn("first")[-1]["result"] == "echo: first"
    agent.user("second turn here")
    agent.until(is_text_delta)
    assert agent.wait() == 3
    assert "fake agent: simulated crash" in agent.stderr()
    assert not any(map(is_result, agent.rest()))


async def test_big_line_of_5_mb_read_with_a_big_limit(workspace: Path, env: dict[str, str]) -> None:
    size = 5 * 1024 * 1024
    proc = await asyncio.create_subprocess_exec(
        *command(*BASE_FLAGS, "--fake-big-line", str(size)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=workspace,
        env=env,
        limit=32 * 1024 * 1024,
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(b'{"type":"user","message":{"role":"user","content":"big"}}\n')
        await proc.stdin.drain()
        lines: list[JSON] = []
        longest = 0
        async with asyncio.timeout(TIMEOUT):
            while not lines or not is_result(lines[-1]):
                raw = await proc.stdout.readline()
                assert raw, "stdout closed before the result"
                longest = max(longest, len(raw))
                lines.append(json.loads(raw))
        assert longest > size
        assert size in [len(text) for text in deltas(lines)]
        assert [len(b["text"]) for b in assistant_blocks(lines)] == [size, len("echo: big")]
        assert lines[-1]["result"] == "echo: big"
        proc.stdin.close()
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), TIMEOUT)


def test_stderr_flood_is_written_while_the_host_drains(spawn: Callable[..., Agent]) -> None:
    size = 2 * 1024 * 1024
    agent = spawn("--fake-stderr-flood", str(size))
    assert agent.turn("one")[-1]["result"] == "echo: one"
    assert agent.turn("two")[-1]["result"] == "echo: two"
    agent.close_stdin()
    assert agent.wait() == 0
    assert len(agent.stderr()) == 2 * size


def test_sigterm_exits_143_by_default(spawn: Callable[..., Agent]) -> None:
    agent = spawn()
    agent.turn("hi")
    os.kill(agent.pid, signal.SIGTERM)
    assert agent.wait() == 143


def test_ignore_sigterm_needs_sigkill(spawn: Callable[..., Agent]) -> None:
    agent = spawn("--fake-ignore-sigterm")
    agent.turn("hi")
    os.kill(agent.pid, signal.SIGTERM)  # an ignored signal is discarded when sent
    assert agent.turn("still alive")[-1]["result"] == "echo: still alive"
    assert agent.proc.poll() is None
    os.kill(agent.pid, signal.SIGKILL)
    assert agent.wait() == -signal.SIGKILL


def test_fork_children_share_the_group_and_die_with_it(
    spawn: Callable[..., Agent], tmp_path: Path
) -> None:
    pid_file = tmp_path / "pids"
    agent = spawn("--fake-fork", "3", "--fake-pid-file", str(pid_file))
    agent.turn("hi")  # the pid file is complete before the first input is read
    pids = read_pids(pid_file)
    assert len(pids) == 4 and pids[0] == agent.pid
    for child in pids[1:]:
        assert not gone(child)
        assert os.getpgid(child) == agent.pid
    os.killpg(agent.pid, signal.SIGKILL)
    assert agent.wait() == -signal.SIGKILL
    assert all(wait_gone(child) for child in pids[1:])


def test_escaped_grandchild_leaves_the_group(spawn: Callable[..., Agent], tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    agent = spawn("--fake-escape", "--fake-pid-file", str(pid_file))
    agent.turn("hi")
    own, escaped = read_pids(pid_file)
    try:
        assert own == agent.pid
        assert os.getpgid(escaped) != agent.pid and os.getsid(escaped) == escaped
        os.killpg(agent.pid, signal.SIGKILL)
        agent.wait()
        assert not gone(escaped), "a group kill must not reach the escaped process"
    finally:
        try:
            os.kill(escaped, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert wait_gone(escaped)


def test_leak_pipe_keeps_stdout_open_after_exit(
    spawn: Callable[..., Agent], tmp_path: Path
) -> None:
    pid_file = tmp_path / "pids"
    agent = spawn("--fake-leak-pipe", "--fake-pid-file", str(pid_file))
    assert agent.turn("hi")[-1]["result"] == "echo: hi"
    assert agent.wait() == 0
    own, leaker = read_pids(pid_file)
    assert own == agent.pid and os.getpgid(leaker) == agent.pid
    assert agent.proc.stdout is not None
    pipe = os.fstat(agent.proc.stdout.fileno())
    held = os.stat(f"/proc/{leaker}/fd/1")
    assert (held.st_dev, held.st_ino) == (pipe.st_dev, pipe.st_ino)
    os.killpg(agent.pid, signal.SIGKILL)
    assert agent.rest() == []  # EOF arrives once the group is gone
    assert wait_gone(leaker)


def test_dump_env(spawn: Callable[..., Agent], tmp_path: Path) -> None:
    dump = tmp_path / "env.json"
    agent = spawn("--fake-dump-env", str(dump), extra_env={"HOTPLEX_MARKER": "xyz"})
    agent.close_stdin()
    assert agent.wait() == 0
    environ = json.loads(dump.read_text())
    assert environ["HOTPLEX_MARKER"] == "xyz"
    assert environ["CLAUDE_CONFIG_DIR"] == str(tmp_path / "config")


def test_no_result_switch_never_ends_a_turn(spawn: Callable[..., Agent]) -> None:
    agent = spawn("--fake-no-result")

    def final_text(text: str) -> Callable[[JSON], bool]:
        return lambda x: x["type"] == "assistant" and x["message"]["content"][0].get("text") == text

    agent.user("one")
    lines = agent.until(final_text("echo: one"))
    agent.user("two")
    lines += agent.until(final_text("echo: two"))
    agent.close_stdin()
    assert agent.wait() == 0
    lines += agent.rest()
    assert len(of_type(lines, "system", "init")) == 2
    assert of_type(lines, "result") == []


def test_exit_code_switch_applies_at_eof(spawn: Callable[..., Agent]) -> None:
    agent = spawn("--fake-exit-code", "7")
    agent.turn("hi")
    agent.close_stdin()
    assert agent.wait() == 7
