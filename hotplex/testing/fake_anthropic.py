"""A fake Anthropic Messages API on 127.0.0.1, for driving real agent CLIs in tests.

Claude Code (``ANTHROPIC_BASE_URL=<base_url>``) and OpenCode's ``@ai-sdk/anthropic`` provider
(``baseURL=<base_url>/v1``) both talk to it. Use it as an async context manager::

    async with FakeAnthropic() as api:
        env["ANTHROPIC_BASE_URL"] = api.base_url
        ...
        await api.wait_for_requests(2, timeout=10)
        assert api.count_user_turns(session_id) == 2

from synchronous code through :class:`FakeAnthropicThread`, or standalone with
``python -m hotplex.testing.fake_anthropic --port 19101``.

Routes: ``GET``/``HEAD /`` answer 200; ``POST /v1/messages`` (with or without ``?beta=true``)
streams server-sent events when ``stream`` is true and returns one JSON message otherwise;
``POST /v1/messages/count_tokens`` returns ``{"input_tokens": N}``; anything else is a 404 in
Anthropic's error shape. Every request is recorded in :attr:`FakeAnthropic.requests`.

The reply depends on the newest user text: the last non-``<system-reminder>`` text block of the
last message whose role is ``user`` (a ``system`` message may follow it), without one pair of
wrapping double quotes (``opencode run`` adds them). By default the answer is ``echo: <text>``,
streamed as one text delta per word. When that user message carries ``tool_result`` blocks
instead, the answer is ``tool said: <result text>`` (``tool error: <result text>`` when
``is_error``). Keywords in the user text (upper case, anywhere):

``RECALL``
    Answer ``recall: <t1> | <t2> | ...``, listing every earlier user text of the conversation
    (text blocks of earlier user messages, without reminders and tool results).
``BASH: <command>``
    Ask for the tool ``Bash`` (``bash`` if that is the name in the request's ``tools``) with
    input ``{"command": <command>, "description": "fake command"}``; stop reason ``tool_use``.
    Tool ids are ``toolu_fake<counter>``.
``READ: <path>``
    Ask for ``Read`` (or ``read``) with ``{"file_path": <path>}`` (``filePath`` when the tool's
    input schema names that key, as OpenCode's does).
``MCP: <tool_name> <json object>``
    Ask for exactly that tool (``mcp__hotplex__echo``) with that input.
``ASK: <question>``
    Ask for ``AskUserQuestion`` with one question and the options ``Yes`` and ``No``.
``THINK``
    Put a thinking block (``thinking_delta`` and ``signature_delta``) before the reply.
``SLOW`` / ``SLOW=<seconds>``
    Pace the deltas 0.2 s apart for about 3 s (or the given time); short texts are padded
    with dots so there are enough deltas.
``BIG=<n>``
    Answer one text delta of exactly ``n`` characters.
``HANG``
    Send no response headers until the client goes away or the server stops (then a 503).
``ERR400`` / ``ERR500`` / ``ERR529``
    Answer that status with ``invalid_request_error`` / ``api_error`` / ``overloaded_error``.

The tool keywords need a non-empty ``tools`` list in the request; side requests without tools
(OpenCode's title generation) get the echo instead. Usage numbers are non-zero: input tokens
are a rough count of the request, output tokens the number of deltas.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import re
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

__all__ = [
    "ApiError",
    "FakeAnthropic",
    "FakeAnthropicThread",
    "MessageMeta",
    "RecordedRequest",
    "Reply",
    "image_blocks",
    "main",
    "plan_reply",
]

JSON = dict[str, Any]
MESSAGES_PATH = "/v1/messages"
SLOW_STEP = 0.2
SHUTDOWN_TIMEOUT = 1.0
_RECORDED_HEADERS = (
    "user-agent",
    "anthropic-beta",
    "anthropic-version",
    "content-type",
    "x-claude-code-session-id",
)
_ERRORS = {
    "ERR400": (400, "invalid_request_error", "fake bad request"),
    "ERR500": (500, "api_error", "fake internal error"),
    "ERR529": (529, "overloaded_error", "fake overloaded"),
}


# --- reading a request ---------------------------------------------------------------------


def _content_blocks(message: JSON) -> list[JSON]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [block for block in content if isinstance(block, dict)]
    return []


def image_blocks(message: JSON) -> list[JSON]:
    """The ``image`` content blocks of a message."""
    return [b for b in _content_blocks(message) if b.get("type") == "image"]


def user_texts(message: JSON) -> list[str]:
    """The text blocks of one message, without ``<system-reminder>`` blocks."""
    texts = []
    for block in _content_blocks(message):
        text = block.get("text") if block.get("type") == "text" else None
        if isinstance(text, str) and not text.lstrip().startswith("<system-reminder>"):
            texts.append(text.strip())
    return texts


def tool_results(message: JSON) -> list[JSON]:
    """The ``tool_result`` blocks of one message."""
    return [b for b in _content_blocks(message) if b.get("type") == "tool_result"]


def last_user_index(messages: Sequence[JSON]) -> int | None:
    """Index of the last message whose role is ``user`` (a system message may follow it)."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].get("role") == "user":
            return index
    return None


def _messages(body: JSON) -> list[JSON]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return []
    return [m for m in messages if isinstance(m, dict)]


def _tool_result_text(block: JSON) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _tools(body: JSON) -> list[JSON]:
    tools = body.get("tools")
    return [t for t in tools if isinstance(t, dict)] if isinstance(tools, list) else []


def _tool_name(tools: Sequence[JSON], *candidates: str) -> str:
    names = {tool.get("name") for tool in tools}
    return next((name for name in candidates if name in names), candidates[0])


def _schema_keys(tools: Sequence[JSON], name: str) -> set[str]:
    for tool in tools:
        if tool.get("name") == name:
            schema = tool.get("input_schema")
            properties = schema.get("properties") if isinstance(schema, dict) else None
            return set(properties) if isinstance(properties, dict) else set()
    return set()


def rough_tokens(value: object) -> int:
    """A rough token count: about four characters of JSON per token, at least 1."""
    return max(1, len(json.dumps(value, ensure_ascii=False)) // 4)


# --- deciding the reply --------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One content block of a reply; ``pieces`` are the streamed delta payloads."""

    kind: Literal["text", "thinking", "tool_use"]
    pieces: tuple[str, ...]
    tool_id: str = ""
    tool_name: str = ""
    tool_input: JSON = field(default_factory=dict)
    signature: str = ""

    @property
    def text(self) -> str:
        return "".join(self.pieces)


@dataclass(frozen=True)
class Reply:
    """A successful answer: its blocks, stop reason and the pause between deltas."""

    blocks: tuple[Block, ...]
    stop_reason: str = "end_turn"
    delay: float = 0.0


@dataclass(frozen=True)
class ApiError:
    """An HTTP error answer in Anthropic's error shape."""

    status: int
    type: str
    message: str

    def body(self) -> JSON:
        return {"type": "error", "error": {"type": self.type, "message": self.message}}


@dataclass(frozen=True)
class Hang:
    """Never answer."""


def _words(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"\S+\s*|\s+", text)) or ("",)


def _spread(text: str, count: int) -> tuple[str, ...]:
    """Split ``text`` into exactly ``count`` non-empty pieces, padding it with dots."""
    text = text + "." * max(0, count - len(text))
    bounds = [len(text) * i // count for i in range(count + 1)]
    return tuple(text[a:b] for a, b in itertools.pairwise(bounds))


def _text_block(text: str) -> Block:
    return Block("text", _words(text))


def _tool_block(tool_id: str, name: str, tool_input: JSON) -> Block:
    encoded = json.dumps(tool_input)
    third = max(1, len(encoded) // 3)
    pieces = tuple(encoded[i : i + third] for i in range(0, len(encoded), third))
    return Block("tool_use", pieces, tool_id=tool_id, tool_name=name, tool_input=tool_input)


def _thinking_block(text: str) -> Block:
    return Block("thinking", _words(f"Let me think about: {text}"), signature="ZmFrZS1zaWc=")


def _recall(messages: Sequence[JSON], current: int) -> str:
    earlier = [t for m in messages[:current] if m.get("role") == "user" for t in user_texts(m)]
    earlier += user_texts(messages[current])[:-1]
    return "recall: " + " | ".join(t for t in earlier if t)


def _tool_request(text: str, tools: Sequence[JSON], tool_id: str) -> Block | None:
    if match := re.search(r"BASH:[ \t]*(.+)", text):
        name = _tool_name(tools, "Bash", "bash")
        command = {"command": match.group(1).strip(), "description": "fake command"}
        return _tool_block(tool_id, name, command)
    if match := re.search(r"READ:[ \t]*(.+)", text):
        name = _tool_name(tools, "Read", "read")
        key = "filePath" if "filePath" in _schema_keys(tools, name) else "file_path"
        return _tool_block(tool_id, name, {key: match.group(1).strip()})
    if match := re.search(r"MCP:[ \t]*(\S+)[ \t]*(.*)", text):
        return _tool_block(tool_id, match.group(1), _json_object(match.group(2)))
    if match := re.search(r"ASK:[ \t]*(.+)", text):
        return _tool_block(tool_id, "AskUserQuestion", _question(match.group(1).strip()))
    return None


def _json_object(raw: str) -> JSON:
    try:
        value = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        return {"raw": raw}
    return value if isinstance(value, dict) else {"value": value}


def _question(question: str) -> JSON:
    options = [
        {"label": "Yes", "description": "Answer yes"},
        {"label": "No", "description": "Answer no"},
    ]
    return {
        "questions": [
            {"question": question, "header": "Question", "multiSelect": False, "options": options}
        ]
    }


def _unquoted(text: str) -> str:
    """Drop one pair of wrapping double quotes (``opencode run`` quotes its message)."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def _slow_seconds(text: str) -> float | None:
    match = re.search(r"\bSLOW(?:=(\d+(?:\.\d+)?))?", text)
    if match is None:
        return None
    return float(match.group(1)) if match.group(1) else 3.0


def _answer_text(text: str, messages: Sequence[JSON], current: int) -> Block:
    if match := re.search(r"\bBIG=(\d+)", text):
        return Block("text", ("x" * int(match.group(1)),))
    if re.search(r"\bRECALL\b", text):
        return _text_block(_recall(messages, current))
    return _text_block(f"echo: {text}")


def _tool_result_reply(results: Sequence[JSON]) -> Reply:
    lines = [
        ("tool error: " if block.get("is_error") else "tool said: ") + _tool_result_text(block)
        for block in results
    ]
    return Reply((_text_block("\n".join(lines)),))


def _paced(reply: Reply, seconds: float) -> Reply:
    count = max(1, round(seconds / SLOW_STEP))
    blocks = tuple(
        Block("text", _spread(b.text, count)) if b.kind == "text" else b for b in reply.blocks
    )
    return Reply(blocks, reply.stop_reason, delay=seconds / count)


def plan_reply(body: JSON, ids: Iterator[int]) -> Reply | ApiError | Hang:
    """Decide the answer to one ``/v1/messages`` request body (see the module docstring)."""
    messages = _messages(body)
    current = last_user_index(messages)
    if current is None:
        return ApiError(400, "invalid_request_error", "fake: no user message")
    results = tool_results(messages[current])
    if results:
        return _tool_result_reply(results)
    texts = user_texts(messages[current])
    text = _unquoted(texts[-1]) if texts else ""
    for keyword, (status, kind, message) in _ERRORS.items():
        if keyword in text:
            return ApiError(status, kind, message)
    if re.search(r"\bHANG\b", text):
        return Hang()
    tools = _tools(body)
    tool = _tool_request(text, tools, f"toolu_fake{next(ids)}") if tools else None
    main = tool or _answer_text(text, messages, current)
    blocks = (_thinking_block(text), main) if re.search(r"\bTHINK\b", text) else (main,)
    reply = Reply(blocks, "tool_use" if tool else "end_turn")
    seconds = _slow_seconds(text)
    return reply if seconds is None else _paced(reply, seconds)


# --- encoding the reply --------------------------------------------------------------------


def _start_block(block: Block) -> JSON:
    if block.kind == "tool_use":
        return {"type": "tool_use", "id": block.tool_id, "name": block.tool_name, "input": {}}
    if block.kind == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    return {"type": "text", "text": ""}


def _deltas(block: Block) -> Iterator[JSON]:
    for piece in block.pieces:
        if block.kind == "tool_use":
            yield {"type": "input_json_delta", "partial_json": piece}
        elif block.kind == "thinking":
            yield {"type": "thinking_delta", "thinking": piece}
        else:
            yield {"type": "text_delta", "text": piece}
    if block.kind == "thinking":
        yield {"type": "signature_delta", "signature": block.signature}


def _full_block(block: Block) -> JSON:
    if block.kind == "tool_use":
        return {**_start_block(block), "input": block.tool_input}
    if block.kind == "thinking":
        return {"type": "thinking", "thinking": block.text, "signature": block.signature}
    return {"type": "text", "text": block.text}


def output_tokens(reply: Reply) -> int:
    """The number of deltas the reply streams."""
    return sum(1 for block in reply.blocks for _ in _deltas(block))


def _usage(input_tokens: int, output: int) -> JSON:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


@dataclass(frozen=True)
class MessageMeta:
    """What a reply message carries besides its content."""

    msg_id: str
    model: str
    input_tokens: int


def sse_events(reply: Reply, meta: MessageMeta) -> Iterator[JSON]:
    """The stream events of a reply, in wire order."""
    yield {
        "type": "message_start",
        "message": {
            "id": meta.msg_id,
            "type": "message",
            "role": "assistant",
            "model": meta.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _usage(meta.input_tokens, 1),
        },
    }
    for index, block in enumerate(reply.blocks):
        yield {"type": "content_block_start", "index": index, "content_block": _start_block(block)}
        for delta in _deltas(block):
            yield {"type": "content_block_delta", "index": index, "delta": delta}
        yield {"type": "content_block_stop", "index": index}
    yield {
        "type": "message_delta",
        "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
        "usage": {"output_tokens": output_tokens(reply)},
    }
    yield {"type": "message_stop"}


def message_json(reply: Reply, meta: MessageMeta) -> JSON:
    """The reply as one non-streamed Message object."""
    return {
        "id": meta.msg_id,
        "type": "message",
        "role": "assistant",
        "model": meta.model,
        "content": [_full_block(block) for block in reply.blocks],
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": _usage(meta.input_tokens, output_tokens(reply)),
    }


def _sse_frame(event: JSON) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


# --- the server ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: JSON | None
    at: float

    @property
    def session_id(self) -> str | None:
        """Claude Code's ``X-Claude-Code-Session-Id`` header, if sent."""
        return self.headers.get("x-claude-code-session-id")

    @property
    def messages(self) -> list[JSON]:
        return _messages(self.body or {})


def _error_response(error: ApiError) -> web.Response:
    return web.json_response(error.body(), status=error.status)


class FakeAnthropic:
    """The fake API as an aiohttp application, served on 127.0.0.1 while entered."""

    def __init__(self, *, port: int = 0) -> None:
        self.requests: list[RecordedRequest] = []
        self._port = port
        self._tool_ids = itertools.count(1)
        self._msg_ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.app = self._make_app()

    def _make_app(self) -> web.Application:
        # requests carry base64 images (up to 5 MB each): more than aiohttp's 1 MiB default
        app = web.Application(middlewares=[self._record], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self._root)
        app.router.add_post(MESSAGES_PATH, self._messages)
        app.router.add_post(MESSAGES_PATH + "/count_tokens", self._count_tokens)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    @property
    def port(self) -> int:
        if self._runner is None or not self._runner.addresses:
            raise RuntimeError("FakeAnthropic is not running")
        return int(self._runner.addresses[0][1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (append ``/v1`` for OpenCode's ``baseURL``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def message_requests(self) -> list[RecordedRequest]:
        """The recorded ``POST /v1/messages`` requests."""
        return [r for r in self.requests if r.path == MESSAGES_PATH]

    async def start(self) -> None:
        runner = web.AppRunner(
            self.app,
            handle_signals=False,
            handler_cancellation=True,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            access_log=None,
        )
        await runner.setup()
        self._runner = runner
        await web.TCPSite(runner, "127.0.0.1", self._port).start()

    async def close(self) -> None:
        """Stop serving; open streams and hanging requests end at once."""
        self._closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await asyncio.wait_for(runner.cleanup(), timeout=SHUTDOWN_TIMEOUT * 5)

    async def __aenter__(self) -> FakeAnthropic:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def wait_for_requests(
        self,
        n: int,
        timeout: float = 10.0,
        *,
        path: str | None = MESSAGES_PATH,
    ) -> list[RecordedRequest]:
        """Wait until ``n`` requests to ``path`` (any path if None) arrived; return them all."""
        try:
            async with asyncio.timeout(timeout):
                while len(found := self._matching(path)) < n:
                    await self._changed.wait()
        except TimeoutError:
            got = len(self._matching(path))
            raise TimeoutError(f"{got} of {n} requests to {path} within {timeout} s") from None
        return found

    def _matching(self, path: str | None) -> list[RecordedRequest]:
        return [r for r in self.requests if path is None or r.path == path]

    def count_user_turns(self, session_id: str | None = None) -> int:
        """Distinct user turns seen (tool-result follow-ups and retries are not counted)."""
        turns: set[tuple[str | None, int, str]] = set()
        for request in self.message_requests:
            if session_id is not None and request.session_id != session_id:
                continue
            messages = request.messages
            current = last_user_index(messages)
            if current is None or tool_results(messages[current]):
                continue
            texts = user_texts(messages[current])
            turns.add((request.session_id, len(messages), texts[-1] if texts else ""))
        return len(turns)

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body: JSON | None = None
        if request.can_read_body:
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                parsed = json.loads(await request.read())
                body = parsed if isinstance(parsed, dict) else None
        headers = {k: request.headers[k] for k in _RECORDED_HEADERS if k in request.headers}
        self.requests.append(
            RecordedRequest(
                request.method, request.path, dict(request.query), headers, body, time.time()
            )
        )
        self._changed.set()
        self._changed = asyncio.Event()
        response: web.StreamResponse = await handler(request)
        return response

    async def _root(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "fake": "anthropic"})

    async def _not_found(self, request: web.Request) -> web.Response:
        return _error_response(
            ApiError(404, "not_found_error", f"fake: no route {request.method} {request.path}")
        )

    async def _count_tokens(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if body is None:
            return _error_response(ApiError(400, "invalid_request_error", "fake: bad JSON"))
        return web.json_response({"input_tokens": rough_tokens(body.get("messages", []))})

    async def _body(self, request: web.Request) -> JSON | None:
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return None
        return body if isinstance(body, dict) else None

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        if body is None:
            return _error_response(ApiError(400, "invalid_request_error", "fake: bad JSON"))
        reply = plan_reply(body, self._tool_ids)
        if isinstance(reply, ApiError):
            return _error_response(reply)
        if isinstance(reply, Hang):
            return await self._hang(request)
        meta = MessageMeta(
            msg_id=f"msg_fake{next(self._msg_ids)}",
            model=str(body.get("model", "claude-fake")),
            input_tokens=rough_tokens(body.get("messages", [])),
        )
        if not body.get("stream"):
            return web.json_response(message_json(reply, meta))
        return await self._stream(request, reply, meta)

    async def _stream(
        self, request: web.Request, reply: Reply, meta: MessageMeta
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        started = False
        try:
            for event in sse_events(reply, meta):
                is_delta = event["type"] == "content_block_delta"
                if is_delta and started and reply.delay and await self._pause(reply.delay):
                    return response
                started = started or is_delta
                await response.write(_sse_frame(event))
            await response.write_eof()
        except ConnectionError:
            pass
        return response

    async def _pause(self, seconds: float) -> bool:
        """Sleep, or return True at once when the server is closing."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=seconds)
        return self._closing.is_set()

    async def _hang(self, request: web.Request) -> web.Response:
        while not await self._pause(SLOW_STEP):
            transport = request.transport
            if transport is None or transport.is_closing():
                break
        return _error_response(ApiError(503, "api_error", "fake: hang ended"))


class FakeAnthropicThread:
    """:class:`FakeAnthropic` on a background thread with its own loop, for sync tests::

    with FakeAnthropicThread() as api:
        run_cli(env={"ANTHROPIC_BASE_URL": api.base_url})
        api.wait_for_requests(1, timeout=10)
    """

    def __init__(self, *, port: int = 0, start_timeout: float = 10.0) -> None:
        self._port = port
        self._start_timeout = start_timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="fake-anthropic", daemon=True)
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._api: FakeAnthropic | None = None
        self._error: BaseException | None = None

    @property
    def api(self) -> FakeAnthropic:
        if self._api is None:
            raise RuntimeError("FakeAnthropicThread is not running")
        return self._api

    @property
    def base_url(self) -> str:
        return self.api.base_url

    @property
    def requests(self) -> list[RecordedRequest]:
        return list(self.api.requests)

    def count_user_turns(self, session_id: str | None = None) -> int:
        return self.api.count_user_turns(session_id)

    def wait_for_requests(
        self, n: int, timeout: float = 10.0, *, path: str | None = MESSAGES_PATH
    ) -> list[RecordedRequest]:
        waiting = self.api.wait_for_requests(n, timeout, path=path)
        future = asyncio.run_coroutine_threadsafe(waiting, self._loop)
        return future.result(timeout + 1.0)

    def start(self) -> FakeAnthropicThread:
        self._thread.start()
        if not self._ready.wait(self._start_timeout):
            raise TimeoutError("fake Anthropic server did not start")
        if self._error is not None:
            raise RuntimeError("fake Anthropic server failed to start") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and join the thread (bounded by ``timeout``)."""
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("fake Anthropic thread did not stop")

    def __enter__(self) -> FakeAnthropicThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as error:  # reported to start() or lost after stop()
            self._error = error
        finally:
            self._ready.set()
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with FakeAnthropic(port=self._port) as api:
            self._api = api
            self._ready.set()
            await self._stop.wait()


async def _serve_forever(port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with FakeAnthropic(port=port) as api:
        print(f"listening on {api.base_url}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hotplex.testing.fake_anthropic --port N``: serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description="Fake Anthropic Messages API on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0 picks a free one)")
    args = parser.parse_args(argv)
    asyncio.run(_serve_forever(args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
