"""The fake Anthropic Messages API, driven with aiohttp's client."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hotplex.testing.fake_anthropic import FakeAnthropic, FakeAnthropicThread

REPO = Path(__file__).parents[2]
REMINDER = {"type": "text", "text": "<system-reminder>\nToday is a day.\n</system-reminder>"}
BASH_TOOL = {"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {}}}}
READ_TOOL = {"name": "Read", "input_schema": {"type": "object", "properties": {"file_path": {}}}}

Event = tuple[str, dict[str, Any]]


@pytest.fixture
async def api() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as server:
        yield server


def user(*texts: str | dict[str, Any]) -> dict[str, Any]:
    blocks = [{"type": "text", "text": t} if isinstance(t, str) else t for t in texts]
    return {"role": "user", "content": blocks}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def body(*messages: dict[str, Any], tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "model": "claude-test",
        "max_tokens": 100,
        "messages": list(messages),
        "tools": tools or [],
        "stream": True,
    }


def parse_sse(raw: str) -> list[Event]:
    events = []
    for frame in raw.split("\n\n"):
        if not frame.strip():
            continue
        name_line, data_line = frame.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: ")
        data = json.loads(data_line.removeprefix("data: "))
        assert data["type"] == name_line.removeprefix("event: ")
        events.append((data["type"], data))
    return events


async def stream(api: FakeAnthropic, payload: dict[str, Any]) -> list[Event]:
    async with aiohttp.ClientSession() as http:
        url = f"{api.base_url}/v1/messages?beta=true"
        async with http.post(url, json=payload, timeout=aiohttp.ClientTimeout(10)) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            return parse_sse(await resp.text())


def text_of(events: list[Event]) -> str:
    return "".join(
        d["delta"]["text"]
        for name, d in events
        if name == "content_block_delta" and d["delta"]["type"] == "text_delta"
    )


def tool_use_of(events: list[Event]) -> dict[str, Any]:
    start = next(
        d["content_block"]
        for n, d in events
        if n == "content_block_start" and d["content_block"]["type"] == "tool_use"
    )
    fragments = [
        d["delta"]["partial_json"]
        for n, d in events
        if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta"
    ]
    assert len(fragments) > 1
    return {**start, "input": json.loads("".join(fragments))}


def stop_reason(events: list[Event]) -> str:
    return str(next(d["delta"]["stop_reason"] for n, d in events if n == "message_delta"))


async def test_root_answers_get_and_head(api: FakeAnthropic) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.head(api.base_url + "/") as head:
            assert head.status == 200
        async with http.get(api.base_url + "/") as get:
            assert get.status == 200


async def test_stream_frame_order_and_echo(api: FakeAnthropic) -> None:
    events = await stream(api, body(user(REMINDER, "hello there")))
    names = [name for name, _ in events]
    assert names[0] == "message_start"
    assert names[1] == "content_block_start"
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[2:-3]) == {"content_block_delta"}
    assert len(names[2:-3]) >= 2
    assert text_of(events) == "echo: hello there"
    start = events[0][1]["message"]
    assert start["model"] == "claude-test" and start["usage"]["input_tokens"] > 0
    delta = next(d for n, d in events if n == "message_delta")
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] == len(names[2:-3])


async def test_newest_user_text_skips_a_trailing_system_message(api: FakeAnthropic) -> None:
    system = {"role": "system", "content": "The user sent a new message while you were working"}
    events = await stream(api, body(user("first"), assistant("a"), user(REMINDER, "two"), system))
    assert text_of(events) == "echo: two"


async def test_non_stream_request_gets_a_json_message(api: FakeAnthropic) -> None:
    payload = {**body(user("plain")), "stream": False}
    async with (
        aiohttp.ClientSession() as http,
        http.post(api.base_url + "/v1/messages", json=payload) as resp,
    ):
        message = await resp.json()
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["content"] == [{"type": "text", "text": "echo: plain"}]
    assert message["stop_reason"] == "end_turn" and message["usage"]["output_tokens"] > 0


async def test_recall_lists_earlier_user_texts_only(api: FakeAnthropic) -> None:
    tool_result = {"type": "tool_result", "tool_use_id": "toolu_x", "content": "secret output"}
    messages = [
        user(REMINDER, "first"),
        assistant("echo: first"),
        user(tool_result),
        assistant("tool said"),
        user("second"),
        assistant("echo: second"),
        user(REMINDER, "RECALL please"),
    ]
    events = await stream(api, body(*messages))
    assert text_of(events) == "recall: first | second"


async def test_bash_asks_for_the_tool_then_reports_its_result(api: FakeAnthropic) -> None:
    first = await stream(api, body(user("BASH: echo hi"), tools=[BASH_TOOL]))
    tool = tool_use_of(first)
    assert tool["name"] == "Bash" and tool["id"].startswith("toolu_fake")
    assert tool["input"] == {"command": "echo hi", "description": "fake command"}
    assert stop_reason(first) == "tool_use"
    result = {
        "type": "tool_result",
        "tool_use_id": tool["id"],
        "content": [{"type": "text", "text": "hi"}],
    }
    tool_turn = {"role": "assistant", "content": [{**tool, "type": "tool_use"}]}
    second = await stream(api, body(user("BASH: echo hi"), tool_turn, user(result)))
    assert text_of(second) == "tool said: hi"
    assert stop_reason(second) == "end_turn"


async def test_tool_error_result_is_prefixed(api: FakeAnthropic) -> None:
    result = {"type": "tool_result", "tool_use_id": "t", "content": "no", "is_error": True}
    assert text_of(await stream(api, body(user(result)))) == "tool error: no"


async def test_opencode_tool_names_and_schema_keys(api: FakeAnthropic) -> None:
    tools = [
        {"name": "bash", "input_schema": {"properties": {"command": {}}}},
        {"name": "read", "input_schema": {"properties": {"filePath": {}}}},
    ]
    bash = tool_use_of(await stream(api, body(user("BASH: ls"), tools=tools)))
    read = tool_use_of(await stream(api, body(user("READ: /tmp/x y"), tools=tools)))
    assert bash["name"] == "bash"
    assert (read["name"], read["input"]) == ("read", {"filePath": "/tmp/x y"})


async def test_read_defaults_to_file_path(api: FakeAnthropic) -> None:
    read = tool_use_of(await stream(api, body(user("READ: /etc/hostname"), tools=[READ_TOOL])))
    assert (read["name"], read["input"]) == ("Read", {"file_path": "/etc/hostname"})


async def test_mcp_calls_the_named_tool_with_its_json(api: FakeAnthropic) -> None:
    text = 'MCP: mcp__hotplex__echo {"text": "hi there"}'
    events = await stream(api, body(user(text), tools=[BASH_TOOL]))
    tool = tool_use_of(events)
    assert (tool["name"], tool["input"]) == ("mcp__hotplex__echo", {"text": "hi there"})


async def test_tool_keywords_need_tools_in_the_request(api: FakeAnthropic) -> None:
    assert text_of(await stream(api, body(user("BASH: ls")))) == "echo: BASH: ls"


async def test_wrapping_quotes_are_dropped(api: FakeAnthropic) -> None:
    # `opencode run "BASH: echo hi"` sends the message wrapped in double quotes.
    tool = tool_use_of(await stream(api, body(user('"BASH: echo hi"'), tools=[BASH_TOOL])))
    assert tool["input"]["command"] == "echo hi"


async def test_tool_ids_count_up(api: FakeAnthropic) -> None:
    ids = [
        tool_use_of(await stream(api, body(user("BASH: ls"), tools=[BASH_TOOL])))["id"]
        for _ in range(2)
    ]
    assert ids == ["toolu_fake1", "toolu_fake2"]


async def test_think_streams_a_thinking_block_first(api: FakeAnthropic) -> None:
    events = await stream(api, body(user("THINK hard")))
    starts = [d["content_block"]["type"] for n, d in events if n == "content_block_start"]
    deltas = [d["delta"]["type"] for n, d in events if n == "content_block_delta"]
    assert starts == ["thinking", "text"]
    assert {"thinking_delta", "signature_delta", "text_delta"} == set(deltas)
    assert deltas.index("signature_delta") < deltas.index("text_delta")
    assert text_of(events) == "echo: THINK hard"


async def test_slow_paces_the_deltas(api: FakeAnthropic) -> None:
    started = time.monotonic()
    events = await stream(api, body(user("SLOW=0.6")))
    elapsed = time.monotonic() - started
    deltas = [d for n, d in events if n == "content_block_delta"]
    assert len(deltas) == 3
    assert 0.35 <= elapsed < 3.0
    assert text_of(events) == "echo: SLOW=0.6"


async def test_big_is_one_delta_of_n_characters(api: FakeAnthropic) -> None:
    events = await stream(api, body(user("BIG=200000")))
    deltas = [d for n, d in events if n == "content_block_delta"]
    assert len(deltas) == 1 and len(deltas[0]["delta"]["text"]) == 200_000


@pytest.mark.parametrize(
    ("keyword", "status", "kind"),
    [
        ("ERR400", 400, "invalid_request_error"),
        ("ERR500", 500, "api_error"),
        ("ERR529", 529, "overloaded_error"),
    ],
)
async def test_error_keywords(api: FakeAnthropic, keyword: str, status: int, kind: str) -> None:
    async with aiohttp.ClientSession() as http:
        url = api.base_url + "/v1/messages"
        async with http.post(url, json=body(user(f"please {keyword}"))) as resp:
            assert resp.status == status
            error = await resp.json()
    assert error["type"] == "error" and error["error"]["type"] == kind
    assert error["error"]["message"].startswith("fake")


async def test_count_tokens_and_unknown_routes(api: FakeAnthropic) -> None:
    async with aiohttp.ClientSession() as http:
        url = api.base_url + "/v1/messages/count_tokens?beta=true"
        async with http.post(url, json={"messages": [user("hello")]}) as resp:
            counted = await resp.json()
        async with http.get(api.base_url + "/v1/models") as missing:
            assert missing.status == 404
            error = await missing.json()
    assert counted["input_tokens"] > 0
    assert error["type"] == "error" and error["error"]["type"] == "not_found_error"


async def test_request_log_and_wait(api: FakeAnthropic) -> None:
    waiter = asyncio.create_task(api.wait_for_requests(2, timeout=5))
    headers = {"X-Claude-Code-Session-Id": "s1", "anthropic-beta": "claude-code-20250219"}
    async with aiohttp.ClientSession(headers=headers) as http:
        for text in ("one", "two"):
            url = api.base_url + "/v1/messages?beta=true"
            async with http.post(url, json=body(user(text))) as resp:
                await resp.read()
    found = await waiter
    assert [r.body["messages"][-1]["content"][0]["text"] for r in found if r.body] == ["one", "two"]
    first = found[0]
    assert (first.method, first.path, first.query) == ("POST", "/v1/messages", {"beta": "true"})
    assert first.session_id == "s1" and first.headers["anthropic-beta"] == "claude-code-20250219"
    with pytest.raises(TimeoutError):
        await api.wait_for_requests(3, timeout=0.2)


async def test_count_user_turns_ignores_retries_and_tool_results(api: FakeAnthropic) -> None:
    result = {"type": "tool_result", "tool_use_id": "t", "content": "ok"}
    payloads = [
        ("a", body(user("hi"))),
        ("a", body(user("hi"))),  # a retry
        ("a", body(user("hi"), assistant("x"), user(result))),
        ("a", body(user("hi"), assistant("x"), user("again"))),
        ("b", body(user("other"))),
    ]
    async with aiohttp.ClientSession() as http:
        for session, payload in payloads:
            headers = {"X-Claude-Code-Session-Id": session}
            async with http.post(
                api.base_url + "/v1/messages", json=payload, headers=headers
            ) as resp:
                await resp.read()
    assert api.count_user_turns("a") == 2
    assert api.count_user_turns() == 3


async def test_hang_does_not_block_shutdown() -> None:
    server = FakeAnthropic()
    await server.start()
    http = aiohttp.ClientSession()
    try:
        request = asyncio.create_task(
            http.post(
                server.base_url + "/v1/messages",
                json=body(user("HANG")),
                timeout=aiohttp.ClientTimeout(total=10),
            )
        )
        await server.wait_for_requests(1, timeout=5)
        await asyncio.sleep(0)
        assert not request.done()
        started = time.monotonic()
        await asyncio.wait_for(server.close(), timeout=5)
        assert time.monotonic() - started < 3
        outcome = await asyncio.wait_for(asyncio.gather(request, return_exceptions=True), 5)
        response = outcome[0]
        if isinstance(response, aiohttp.ClientResponse):
            assert response.status >= 500
            response.release()
    finally:
        await http.close()


async def test_hang_ends_when_the_client_goes_away(api: FakeAnthropic) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(asyncio.TimeoutError):
            await http.post(
                api.base_url + "/v1/messages",
                json=body(user("HANG")),
                timeout=aiohttp.ClientTimeout(total=0.3),
            )
    events = await stream(api, body(user("still here")))
    assert text_of(events) == "echo: still here"


def test_thread_helper_serves_sync_callers() -> None:
    with FakeAnthropicThread() as api:
        data = json.dumps({**body(user("sync")), "stream": False}).encode()
        request = urllib.request.Request(
            api.base_url + "/v1/messages", data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            message = json.loads(resp.read())
        assert message["content"][0]["text"] == "echo: sync"
        assert len(api.wait_for_requests(1, timeout=5)) == 1
        assert api.count_user_turns() == 1


def test_standalone_module_serves_until_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hotplex.testing.fake_anthropic", "--port", "0"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        readable, _, _ = select.select([proc.stdout], [], [], 10)
        assert readable, "no 'listening on' line within 10 s"
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        with urllib.request.urlopen(line.removeprefix("listening on ") + "/", timeout=5) as resp:
            assert resp.status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
