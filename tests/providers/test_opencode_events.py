"""The OpenCode provider's pure parts: event normalization (on event sequences recorded from
``opencode serve`` 1.18.33), permission rules, configuration and SSE framing."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hotplex.config import ProviderSettings
from hotplex.providers import opencode_stream
from hotplex.providers.opencode import OpenCodeProvider, OpenCodeSession
from hotplex.providers.opencode_events import (
    OpenCodeNormalizer,
    error_event,
    needs_person,
    rule_matches,
)
from hotplex.types import ToolDecision, ToolRequest

SES = "ses_test"


def now_ms() -> float:
    return time.time() * 1000


def user(msg: str) -> tuple[str, dict[str, Any]]:
    info = {"id": msg, "role": "user", "sessionID": SES, "time": {"created": now_ms()}}
    return "message.updated", {"sessionID": SES, "info": info}


def assistant(msg: str, parent: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    info = {
        "id": msg,
        "parentID": parent,
        "role": "assistant",
        "providerID": "anthropic",
        "modelID": "claude-sonnet-4-6",
        "time": {"created": now_ms()},
        "cost": 0,
        "tokens": {"input": 0, "output": 0, "reasoning": 0, "cache": {"read": 0, "write": 0}},
        **extra,
    }
    return "message.updated", {"sessionID": SES, "info": info}


def part(msg: str, part_id: str, kind: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    body = {"id": part_id, "messageID": msg, "sessionID": SES, "type": kind, **fields}
    return "message.part.updated", {"sessionID": SES, "part": body}


def delta(msg: str, part_id: str, text: str) -> tuple[str, dict[str, Any]]:
    props = {"sessionID": SES, "messageID": msg, "partID": part_id, "field": "text", "delta": text}
    return "message.part.delta", props


def status(kind: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return "session.status", {"sessionID": SES, "status": {"type": kind, **fields}}


IDLE = [status("idle"), ("session.idle", {"sessionID": SES})]
TOKENS = {"input": 28, "output": 3, "reasoning": 0, "cache": {"read": 10, "write": 2}}


def feed(norm: OpenCodeNormalizer, events: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    out = []
    for kind, props in events:
        out += norm.feed(kind, props)
    return out


def plain_turn(user_id: str, msg: str, text: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        user(user_id),
        status("busy"),
        assistant(msg, user_id),
        part(msg, f"{msg}-s", "step-start"),
        part(msg, f"{msg}-t", "text", text="", time={"start": 1}),
        delta(msg, f"{msg}-t", text[:5]),
        delta(msg, f"{msg}-t", text[5:]),
        part(msg, f"{msg}-t", "text", text=text, time={"start": 1, "end": 2}),
        assistant(msg, user_id, finish="stop", tokens=TOKENS, cost=0.0012),
        *IDLE,
    ]


def test_a_plain_turn() -> None:
    norm = OpenCodeNormalizer()
    norm.start_turn()
    events = feed(norm, plain_turn("msg_u1", "msg_a1", "echo: hello"))
    assert norm.finished
    events += norm.finish(120, context_window=200000)
    assert [(e.type, e.data.get("text")) for e in events[:3]] == [
        ("text_delta", "echo:"),
        ("text_delta", " hello"),
        ("text", "echo: hello"),
    ]
    usage = events[3]
    assert usage.type == "usage"
    assert usage.data == {
        "input_tokens": 28,
        "output_tokens": 3,
        "cache_read_tokens": 10,
        "cache_write_tokens": 2,
        "cost_usd": 0.0012,
        "context_used": 40,
        "context_window": 200000,
    }
    assert events[4].data == {"status": "ok", "duration_ms": 120}
    assert norm.model() == ("anthropic", "claude-sonnet-4-6")


def test_cost_is_summed_over_the_steps_of_one_turn_only() -> None:
    norm = OpenCodeNormalizer()
    norm.start_turn()
    feed(norm, plain_turn("msg_u1", "msg_a1", "first"))
    norm.finish(1)
    norm.start_turn()
    steps = [
        user("msg_u2"),
        assistant("msg_a2", "msg_u2", finish="tool-calls", tokens=TOKENS, cost=0.001),
        assistant("msg_a3", "msg_u2", finish="stop", tokens=TOKENS, cost=0.002),
        *IDLE,
    ]
    feed(norm, steps)
    usage = norm.finish(1)[0]
    assert usage.data["cost_usd"] == 0.003 and usage.data["input_tokens"] == 56
    assert usage.data["context_used"] == 40  # the last call's context, not the sum


def test_stale_events_of_an_earlier_turn_are_ignored() -> None:
    norm = OpenCodeNormalizer()
    norm.start_turn()
    feed(norm, plain_turn("msg_u1", "msg_a1", "first"))
    norm.finish(1)
    norm.start_turn()
    # after an abort or an error OpenCode sends a late update and a second idle pair
    late = [
        assistant("msg_a1", "msg_u1", finish="stop"),
        part("msg_a1", "msg_a1-t2", "text", text="late", time={"start": 1, "end": 2}),
        *IDLE,
    ]
    assert feed(norm, late) == [] and not norm.finished
    events = feed(norm, plain_turn("msg_u2", "msg_a2", "second"))
    assert [e.data["text"] for e in events if e.type == "text"] == ["second"]
    assert norm.finished


def test_tools_and_reasoning() -> None:
    norm = OpenCodeNormalizer()
    norm.start_turn()
    call = {"callID": "toolu_1", "tool": "bash"}
    running = {"status": "running", "input": {"command": "ls"}}
    events = feed(
        norm,
        [
            user("msg_u"),
            assistant("msg_a", "msg_u"),
            part("msg_a", "r", "reasoning", text="", time={"start": 1}),
            delta("msg_a", "r", "hmm"),
            part("msg_a", "r", "reasoning", text="hmm", time={"start": 1, "end": 2}),
            part("msg_a", "p", "tool", **call, state={"status": "pending", "input": {}}),
            part("msg_a", "p", "tool", **call, state=running),
            part("msg_a", "p", "tool", **call, state={**running, "metadata": {"output": "a"}}),
            part(
                "msg_a",
                "p",
                "tool",
                **call,
                state={**running, "status": "completed", "output": "a\n"},
            ),
            part(
                "msg_a",
                "f",
                "tool",
                callID="toolu_3",
                tool="bash",
                state={"status": "completed", "input": {}, "output": "no", "metadata": {"exit": 1}},
            ),
            part(
                "msg_a",
                "q",
                "tool",
                callID="toolu_2",
                tool="edit",
                state={"status": "error", "input": {"filePath": "x"}, "error": "rejected"},
            ),
        ],
    )
    assert [(e.type, e.data) for e in events] == [
        ("thinking", {"text": "hmm"}),
        ("tool_use", {"tool_use_id": "toolu_1", "name": "bash", "input": {"command": "ls"}}),
        ("tool_result", {"tool_use_id": "toolu_1", "output": "a\n", "is_error": False}),
        ("tool_use", {"tool_use_id": "toolu_3", "name": "bash", "input": {}}),
        ("tool_result", {"tool_use_id": "toolu_3", "output": "no", "is_error": True}),
        ("tool_use", {"tool_use_id": "toolu_2", "name": "edit", "input": {"filePath": "x"}}),
        ("tool_result", {"tool_use_id": "toolu_2", "output": "rejected", "is_error": True}),
    ]
    assert norm.tool_calls["toolu_1"].input == {"command": "ls"}


def test_api_errors_and_aborts() -> None:
    norm = OpenCodeNormalizer()
    norm.start_turn()
    error = {
        "name": "APIError",
        "data": {"message": "fake bad request", "statusCode": 400, "isRetryable": False},
    }
    feed(
        norm,
        [user("u"), status("busy"), ("session.error", {"sessionID": SES, "error": error}), *IDLE],
    )
    events = norm.finish(5)
    assert [e.type for e in events] == ["error", "done"]
    assert events[0].data == {
        "code": "api_error",
        "message": "fake bad request (HTTP 400)",
        "retryable": False,
    }
    assert events[1].data["status"] == "error"

    norm.start_turn()
    aborted = {"name": "MessageAbortedError", "data": {"message": "Aborted"}}
    feed(norm, [user("u2"), ("session.error", {"sessionID": SES, "error": aborted}), *IDLE])
    assert [e.data for e in norm.finish(5)] == [{"status": "interrupted", "duration_ms": 5}]

    norm.start_turn()
    norm.interrupt_requested = True  # an abort during a retry wait sends no session.error
    feed(norm, [user("u3"), *IDLE])
    assert norm.finish(5)[-1].data["status"] == "interrupted"


def test_retries_until_we_give_up() -> None:
    norm = OpenCodeNormalizer()
    norm.start_turn()
    events = feed(
        norm,
        [
            user("u"),
            status("retry", attempt=1, message="fake internal error", next=0),
            status("retry", attempt=2, message="fake internal error", next=0),
        ],
    )
    assert [e.data["text"] for e in events] == [
        "retrying after API error (attempt 1): fake internal error",
        "retrying after API error (attempt 2): fake internal error",
    ]
    assert norm.retry_since is not None and norm.retry_attempt == 2
    norm.gave_up = True
    feed(norm, IDLE)
    error, done = norm.finish(3000)
    assert error.data["code"] == "api_error" and error.data["retryable"]
    assert error.data["message"].startswith("gave up after 2 retries")
    assert done.data["status"] == "error"


def test_error_event_mapping() -> None:
    auth = error_event({"name": "ProviderAuthError", "data": {"message": "no key"}})
    assert auth.data == {"code": "auth_error", "message": "no key", "retryable": False}
    retryable = error_event({"name": "APIError", "data": {"message": "x", "isRetryable": True}})
    assert retryable.data["retryable"]
    assert error_event({"name": "Weird"}).data["code"] == "agent_error"


def test_replay_catches_up_from_stored_messages() -> None:
    norm = OpenCodeNormalizer()
    norm.start_turn()
    created = {"created": now_ms()}
    messages = [
        {"info": {"id": "old", "role": "user", "time": {"created": 1.0}}, "parts": []},
        {"info": {"id": "u", "role": "user", "time": created}, "parts": []},
        {
            "info": {
                "id": "a",
                "role": "assistant",
                "parentID": "u",
                "time": created,
                "tokens": TOKENS,
                "cost": 0.5,
            },
            "parts": [
                {
                    "id": "t",
                    "messageID": "a",
                    "type": "text",
                    "text": "caught up",
                    "time": {"start": 1, "end": 2},
                }
            ],
        },
    ]
    events = norm.replay(messages)
    assert [e.data["text"] for e in events] == ["caught up"]
    assert norm.started and norm.replay(messages) == []  # nothing twice
    assert norm.finish(1)[0].data["cost_usd"] == 0.5


@pytest.mark.parametrize(
    ("rule", "permission", "tool", "facts", "expected"),
    [
        ("Bash", "bash", "bash", {"command": "rm -rf x"}, True),
        ("bash(git status:*)", "bash", "bash", {"command": "git status -s"}, True),
        ("Bash(git status:*)", "bash", "bash", {"command": "git push"}, False),
        ("Bash(ls)", "bash", "bash", {"command": "ls"}, True),
        ("Write", "edit", "write", {}, True),
        ("Edit(src/*)", "edit", "edit", {"patterns": ["src/a.py"]}, True),
        ("Edit(src/*)", "edit", "edit", {"patterns": ["docs/a.md"]}, False),
        ("Read", "bash", "bash", {"command": "cat x"}, False),
        ("not a rule(", "bash", "bash", {}, False),
        # a HotPlex agent tool has one name on both providers
        ("hotplex_echo", "hotplex_echo", "hotplex_echo", {}, True),
        ("mcp__hotplex__echo", "hotplex_echo", "hotplex_echo", {}, True),
        ("mcp__hotplex__send.file", "hotplex_send_file", "hotplex_send_file", {}, True),
        ("mcp__hotplex__other", "hotplex_echo", "hotplex_echo", {}, False),
        ("Bash", "hotplex_echo", "hotplex_echo", {}, False),
        ("mcp__hotplex__echo", "bash", "bash", {"command": "x"}, False),
    ],
)
def test_rules(
    rule: str, permission: str, tool: str, facts: dict[str, Any], expected: bool
) -> None:
    assert rule_matches(rule, permission, tool, facts) is expected


def test_who_decides_by_permission_mode() -> None:
    assert needs_person("bash", "default") and needs_person("edit", "default")
    assert needs_person("my_mcp_tool", "default")
    assert not needs_person("read", "default") and not needs_person("grep", "default")
    assert not needs_person("edit", "acceptEdits") and needs_person("bash", "acceptEdits")
    assert not needs_person("bash", "bypassPermissions")


def make_provider(tmp_path: Path, **settings: Any) -> OpenCodeProvider:
    return OpenCodeProvider(
        ProviderSettings(type="opencode", **settings),
        binary=Path("/bin/true"),
        data_dir=tmp_path,
    )


def test_server_environment(tmp_path: Path) -> None:
    provider = make_provider(tmp_path, model="claude-sonnet-4-5")
    env = provider.server_env(
        {
            "PATH": "/bin",
            "XDG_DATA_HOME": "/home/u/.local/share",
            "ANTHROPIC_BASE_URL": "http://127.0.0.1:9/",
            "ANTHROPIC_API_KEY": "sk-test",
            "OPENCODE_PERMISSION": '{"*": "allow", "bash": "allow"}',
            "OPENCODE_CONFIG_CONTENT": '{"share": "disabled"}',
            "OPENCODE_PURE": "0",
        },
        "secret",
    )
    assert env["XDG_DATA_HOME"] == str(tmp_path / "opencode" / "data")
    assert env["XDG_STATE_HOME"] == str(tmp_path / "opencode" / "state")
    assert env["OPENCODE_SERVER_PASSWORD"] == "secret"
    assert env["OPENCODE_DISABLE_AUTOUPDATE"] == "1" and env["OPENCODE_PURE"] == "0"
    # ours come last: with OpenCode's last-match-wins rules, everything asks
    assert list(json.loads(env["OPENCODE_PERMISSION"]).items()) == [
        ("bash", "allow"),
        ("*", "ask"),
        ("question", "deny"),
    ]
    assert json.loads(env["OPENCODE_CONFIG_CONTENT"]) == {
        "share": "disabled",
        "provider": {
            "anthropic": {"options": {"baseURL": "http://127.0.0.1:9/v1", "apiKey": "sk-test"}}
        },
        "model": "anthropic/claude-sonnet-4-5",
    }
    plain = make_provider(tmp_path).server_env({"PATH": "/bin"}, "x")
    assert "OPENCODE_CONFIG_CONTENT" not in plain


class FakeContent:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def iter_any(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


class FakeResponse:
    def __init__(self, chunks: list[bytes]) -> None:
        self.content = FakeContent(chunks)


async def test_sse_frames_are_routed_to_their_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    provider = make_provider(tmp_path)
    asked: list[ToolRequest] = []

    async def gate(request: ToolRequest) -> ToolDecision:
        asked.append(request)
        return ToolDecision("allow")

    mine = OpenCodeSession(provider, "ses_a", "/w", gate)
    other = OpenCodeSession(provider, "ses_b", "/w", gate)
    provider._sessions.update({"ses_a": mine, "ses_b": other})
    mine._turn_running = True
    monkeypatch.setattr(opencode_stream, "MAX_FRAME", 300)

    def frame(payload: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps({"directory": "/w", "payload": payload}).encode() + b"\n\n"

    idle = frame({"type": "session.idle", "properties": {"sessionID": "ses_a"}})
    sync = frame({"type": "sync", "properties": {"sessionID": "ses_a"}})
    theirs = frame({"type": "session.idle", "properties": {"sessionID": "ses_b"}})
    child = frame(
        {
            "type": "session.created",
            "properties": {"sessionID": "ses_c", "info": {"id": "ses_c", "parentID": "ses_a"}},
        }
    )
    huge = b"data: " + b"x" * 400 + b"\n\n"  # over MAX_FRAME: dropped, the stream goes on
    pieces = [huge[k : k + 110] for k in range(0, len(huge), 110)]
    chunks = [
        idle[:7],
        idle[7:] + sync,
        theirs.replace(b"\n", b"\r\n"),
        *pieces[:-1],
        pieces[-1] + child,
        idle,
    ]
    await provider._read_stream(FakeResponse(chunks))  # type: ignore[arg-type]
    assert [mine._queue.get_nowait()[0] for _ in range(mine._queue.qsize())] == [
        "session.idle",
        "session.idle",
    ]
    assert other._queue.empty()  # not in a turn: dropped
    assert provider._children == {"ses_c": "ses_a"}
    assert "an OpenCode event over 300 bytes was dropped" in caplog.text


def asked(permission: str, call: str = "toolu_1", **extra: Any) -> dict[str, Any]:
    return {
        "id": "per_1",
        "sessionID": SES,
        "permission": permission,
        "patterns": extra.pop("patterns", ["x"]),
        "metadata": {},
        "always": extra.pop("always", []),
        "tool": {"messageID": "m", "callID": call},
        **extra,
    }


async def decide(
    tmp_path: Path,
    props: dict[str, Any],
    tool: tuple[str, dict[str, Any]] | None = None,
    pre: str = "defer",
    mode: str | None = None,
    **settings: Any,
) -> tuple[ToolDecision, list[tuple[str, str]]]:
    provider = make_provider(tmp_path, **settings)
    seen: list[tuple[str, str]] = []

    async def gate(request: ToolRequest) -> ToolDecision:
        seen.append((request.stage, request.tool))
        if request.stage == "pre":
            return ToolDecision(pre)  # type: ignore[arg-type]
        return ToolDecision("allow")

    session = OpenCodeSession(provider, SES, str(tmp_path), gate)
    if tool is not None:
        name, tool_input = tool
        state = {"status": "running", "input": tool_input}
        session._normalizer.note_tool(
            {"type": "tool", "callID": "toolu_1", "tool": name, "state": state}
        )
    if mode is not None:
        await session.control("set_permission_mode", mode=mode)
    return await session._decide(props), seen


async def test_who_is_asked_about_what(tmp_path: Path) -> None:
    bash = ("bash", {"command": "git push"})
    decision, seen = await decide(tmp_path, asked("bash", always=["git push *"]), bash)
    assert decision.behavior == "allow" and seen == [("pre", "bash"), ("permission", "bash")]
    decision, seen = await decide(tmp_path, asked("read"), ("read", {"filePath": "/w/a"}))
    assert decision.behavior == "allow" and seen == [("pre", "read")]
    decision, seen = await decide(tmp_path, asked("bash"), bash, pre="deny")
    assert decision.behavior == "deny" and seen == [("pre", "bash")]
    decision, seen = await decide(tmp_path, asked("read"), ("read", {}), pre="ask")
    assert seen == [("pre", "read"), ("permission", "read")]
    decision, seen = await decide(tmp_path, asked("bash"), bash, mode="dontAsk")
    assert decision.behavior == "deny" and "dontAsk" in decision.message
    decision, seen = await decide(tmp_path, asked("edit"), ("write", {}), mode="plan")
    assert decision.behavior == "deny" and seen == []
    decision, seen = await decide(tmp_path, asked("bash"), bash, mode="bypassPermissions")
    assert decision.behavior == "allow" and seen == [("pre", "bash")]
    decision, seen = await decide(tmp_path, asked("bash"), bash, disallowed_tools=("Bash(git *)",))
    assert decision.behavior == "deny" and seen == []
    decision, seen = await decide(tmp_path, asked("bash"), bash, allowed_tools=("Bash(git:*)",))
    assert decision.behavior == "allow" and seen == [("pre", "bash")]
    own = str((tmp_path / "opencode" / "data" / "tool-output").resolve()) + "/*"
    outside = asked("external_directory", patterns=[own])
    decision, seen = await decide(tmp_path, outside, ("read", {"filePath": own}))
    assert decision.behavior == "allow" and seen == [("pre", "read")]
    elsewhere = asked("external_directory", patterns=["/etc/*"])
    decision, seen = await decide(tmp_path, elsewhere, ("read", {"filePath": "/etc/passwd"}))
    assert seen == [("pre", "read"), ("permission", "read")]


async def test_a_permission_without_a_known_tool_part(tmp_path: Path) -> None:
    provider = make_provider(tmp_path)
    requests: list[ToolRequest] = []

    async def gate(request: ToolRequest) -> ToolDecision:
        requests.append(request)
        return ToolDecision("defer" if request.stage == "pre" else "allow")

    session = OpenCodeSession(provider, SES, str(tmp_path), gate)
    props = asked("doom_loop", call="unknown", patterns=["bash"])
    props["metadata"] = {"tool": "bash"}
    await session._decide(props)
    assert [(r.stage, r.tool, dict(r.input)) for r in requests] == [
        ("pre", "doom_loop", {"tool": "bash"}),
        ("permission", "doom_loop", {"tool": "bash"}),
    ]


async def test_control_sets_the_model_and_mode(tmp_path: Path) -> None:
    session = OpenCodeSession(make_provider(tmp_path), SES, str(tmp_path), lambda r: None)  # type: ignore[arg-type, return-value]
    assert session._model_ref() is None
    await session.control("set_model", model="anthropic/claude-opus-4-5")
    assert session._model_ref() == {"providerID": "anthropic", "modelID": "claude-opus-4-5"}
    await session.control("set_model", model=None)
    assert session._model_ref() is None
    with pytest.raises(NotImplementedError):
        await session.control("rewind")


def test_the_prompt_body(tmp_path: Path) -> None:
    provider = make_provider(tmp_path, append_system_prompt="Answer in French.")
    session = OpenCodeSession(provider, SES, str(tmp_path), lambda r: None)  # type: ignore[arg-type, return-value]
    session._model = "openai/gpt-5"
    assert session.prompt_body("hi") == {
        "parts": [{"type": "text", "text": "hi"}],
        "model": {"providerID": "openai", "modelID": "gpt-5"},
        "system": "Answer in French.",
    }


def test_the_hotplex_mcp_server_is_shared_by_directory(tmp_path: Path) -> None:
    from hotplex.agent_tools import STDIO_SCRIPT, shared_server_entry

    provider = make_provider(tmp_path)
    provider._mcp_servers = {"hotplex": shared_server_entry("/run/t.sock")}
    env = provider.server_env({"PATH": "/bin"}, "x")
    mcp = json.loads(env["OPENCODE_CONFIG_CONTENT"])["mcp"]
    assert list(mcp) == ["hotplex"]
    command = mcp["hotplex"]["command"]
    assert command[1:] == ["-I", str(STDIO_SCRIPT), "--socket", "/run/t.sock"]
    assert mcp["hotplex"]["type"] == "local" and mcp["hotplex"]["enabled"] is True
    assert mcp["hotplex"]["timeout"] == 75_000
    assert provider.agent_tool_grants() is None  # the provider serves no agent tools
