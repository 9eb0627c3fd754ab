"""``hotplex chat``: an interactive terminal chat with a running daemon over its WebSocket
gateway (``/ws/v1/agent``).

The daemon is found like the other client commands (``--url``/``--token``, else
``HOTPLEX_URL``/``HOTPLEX_TOKEN``, else the config). :class:`ChatSession` holds the whole
conversation logic behind an I/O seam (an async ``reader`` of input lines, a ``writer`` of
text, the socket), so tests drive it without a terminal; the click command wires stdin and
stdout. aiohttp is imported inside the command, so ``hotplex --help`` stays fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import click

from hotplex.cli.client import _daemon, _fail

if TYPE_CHECKING:
    import aiohttp

__all__ = ["ChatSession", "StdinReader", "chat"]

PROMPT = "you> "
Reader = Callable[[], Awaitable[str | None]]
Writer = Callable[[str], None]


def _one_line(value: Any, width: int = 100) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _summary(tool: str, tool_input: Any) -> str:
    if isinstance(tool_input, dict):
        for key in ("command", "file_path", "path", "url", "pattern"):
            if isinstance(tool_input.get(key), str):
                return _one_line(tool_input[key])
    return _one_line(tool_input)


class ChatSession:
    """One chat over one WebSocket: ``run()`` reads prompts until EOF or ``/quit``.

    ``reader()`` returns the next input line (without its newline) or None at EOF; it must
    be safe to cancel. ``writer(text)`` writes text as is (no newline added) and flushes.
    ``interrupt()`` is the user's Ctrl-C: it interrupts a running turn, and at the prompt
    ends the chat.
    """

    def __init__(
        self, reader: Reader, writer: Writer, ws: aiohttp.ClientWebSocketResponse, session_id: str
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.ws = ws
        self.session_id = session_id
        self._in_turn = False
        self._interrupted = asyncio.Event()
        self._eof = False
        self._turns = 0
        self._at_line_start = True
        self._tasks: set[asyncio.Future[None]] = set()

    def _write(self, text: str) -> None:
        if text:
            self.writer(text)
            self._at_line_start = text.endswith("\n")

    def _end_line(self) -> None:
        if not self._at_line_start:
            self._write("\n")

    def _line(self, text: str) -> None:
        """Write ``text`` on a line of its own."""
        self._end_line()
        self._write(text + "\n")

    async def run(self) -> int:
        """The exit code: 0 after EOF, ``/quit`` or Ctrl-C at the prompt, 1 if the
        connection failed."""
        while not self._eof:
            self._write(PROMPT)
            self._interrupted.clear()
            line = await self._read()
            if line is None:
                return 0
            prompt = line.strip()
            if prompt in {"/quit", "/exit"}:
                return 0
            if not prompt:
                continue
            if not await self.turn(prompt):
                return 1
        return 0

    async def _read(self) -> str | None:
        """The next line; None at EOF (sets ``_eof``) or when interrupted first."""
        read = asyncio.ensure_future(self.reader())
        stop = asyncio.ensure_future(self._interrupted.wait())
        try:
            await asyncio.wait({read, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not read.done():
                read.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await read
        if not read.done() or read.cancelled():
            self._end_line()
            return None
        line = read.result()
        if line is None:
            self._eof = True
            self._end_line()
        self._at_line_start = True  # the terminal echoed the line and its newline
        return line

    def interrupt(self) -> None:
        """Ctrl-C: interrupt the running turn, or end the chat at the prompt."""
        self._interrupted.set()
        if self._in_turn:
            self._line("^C interrupting…")
            task = asyncio.ensure_future(
                self._send({"type": "interrupt", "session_id": self.session_id})
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, frame: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_json(frame)

    async def turn(self, prompt: str) -> bool:
        """Run one turn to its ``done``; False if the socket closed first."""
        self._turns += 1
        request_id = f"chat-{self._turns}"
        self._in_turn = True
        self._interrupted.clear()
        streamed = False
        try:
            await self.ws.send_json(
                {
                    "type": "execute",
                    "session_id": self.session_id,
                    "prompt": prompt,
                    "request_id": request_id,
                }
            )
            while True:
                message = await self.ws.receive()
                if message.type.name not in {"TEXT", "BINARY"}:
                    self._line(f"hotplex: the connection closed ({message.type.name.lower()})")
                    return False
                frame = json.loads(message.data)
                kind = frame.get("type")
                if frame.get("session_id") not in {None, self.session_id}:
                    continue
                data = frame.get("data") or {}
                if kind == "error" and "seq" not in frame:
                    if frame.get("request_id") == request_id:
                        self._line(f"  ✗ {data.get('code')}: {data.get('message')}")
                        return True
                    continue
                if kind == "text_delta":
                    self._write(str(data.get("text", "")))
                    streamed = True
                elif kind == "text":
                    if not streamed:
                        self._line(str(data.get("text", "")))
                    streamed = False
                elif kind == "tool_use":
                    name = data.get("name", "?")
                    self._line(f"  ⚙ {name}: {_summary(name, data.get('input'))}")
                elif kind == "tool_result":
                    mark = "✗" if data.get("is_error") else "✓"
                    self._line(f"  {mark} {_one_line(data.get('output', ''))}")
                elif kind == "permission_request":
                    await self._ask(data)
                elif kind == "error":
                    self._line(f"  ✗ {data.get('code')}: {_one_line(data.get('message', ''))}")
                elif kind == "done":
                    status = data.get("status")
                    if status != "ok":
                        self._line(f"[{status}]")
                    self._end_line()
                    return True
        finally:
            self._in_turn = False

    async def _ask(self, data: dict[str, Any]) -> None:
        tool = str(data.get("tool", "?"))
        scopes = data.get("scopes") or ["once"]
        self._end_line()
        if data.get("kind") == "prompt":  # a prompt the WAF asks about, before its turn
            self._write(f"The WAF asks ({_one_line(data.get('reason', ''))}): send it? [y/N] ")
        else:
            self._write(f"Allow {tool}: {_summary(tool, data.get('input'))}? [y/N/a(lways)] ")
        answer = await self._read()
        if answer is None and self._interrupted.is_set():
            return  # the interrupt ends the turn
        choice = (answer or "").strip().lower()
        decision = "allow" if choice in {"y", "yes", "a", "always"} else "deny"
        scope = "session" if choice in {"a", "always"} and "session" in scopes else "once"
        await self._send(
            {
                "type": "permission_response",
                "permission_id": data.get("permission_id"),
                "decision": decision,
                "scope": scope,
            }
        )


class StdinReader:
    """Lines of stdin, read by a daemon thread (so a pending read never blocks exit) and
    handed over through a queue (so cancelling a read loses nothing)."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._thread: threading.Thread | None = None

    def _pump(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                line = sys.stdin.readline()
            except (OSError, ValueError):
                line = ""
            loop.call_soon_threadsafe(self._queue.put_nowait, line.rstrip("\r\n") if line else None)
            if not line:
                return

    async def __call__(self) -> str | None:
        if self._thread is None:
            loop = asyncio.get_running_loop()
            self._thread = threading.Thread(target=self._pump, args=(loop,), daemon=True)
            self._thread.start()
        return await self._queue.get()


def _write_stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def ws_url(url: str) -> str:
    """The gateway's WebSocket URL for a daemon URL (http → ws, https → wss)."""
    if url.startswith("https://"):
        url = "wss://" + url[len("https://") :]
    elif url.startswith("http://"):
        url = "ws://" + url[len("http://") :]
    return url.rstrip("/") + "/ws/v1/agent"


async def _chat(url: str, token: str | None, session_id: str) -> int:
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http:
        try:
            ws = await http.ws_connect(
                ws_url(url), headers=headers, timeout=aiohttp.ClientWSTimeout(ws_close=2.0)
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 401:
                _fail(
                    f"HotPlex at {url} refused the connection (401): pass an API key "
                    "(server.api_keys) or the admin token with --token or HOTPLEX_TOKEN"
                )
            _fail(f"HotPlex at {url} refused the WebSocket ({exc.status}): {exc.message}")
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            _fail(f"cannot reach HotPlex at {url}: {reason}; is `hotplex serve` running?")
        session = ChatSession(StdinReader(), _write_stdout, ws, session_id)
        loop = asyncio.get_running_loop()
        handler = False
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGINT, session.interrupt)
            handler = True
        _write_stdout(f"session {session_id} at {url} (Ctrl-D or /quit to leave)\n")
        try:
            return await session.run()
        finally:
            if handler:
                loop.remove_signal_handler(signal.SIGINT)
            await ws.close()


@click.command("chat")
@click.option("--session", "session_id", help="Session id to use or resume (default: a new one).")
@click.option(
    "--url",
    envvar="HOTPLEX_URL",
    help="Daemon URL (else HOTPLEX_URL, else server.host:port of the config).",
)
@click.option(
    "--token",
    envvar="HOTPLEX_TOKEN",
    help="API key or admin token (else HOTPLEX_TOKEN, else server.admin_token).",
)
@click.pass_context
def chat(ctx: click.Context, session_id: str | None, url: str | None, token: str | None) -> None:
    """Chat with the daemon's agent in the terminal (Ctrl-C interrupts a turn)."""
    daemon = _daemon(ctx, url, token)
    code = asyncio.run(_chat(daemon.url, daemon.token, session_id or uuid.uuid4().hex))
    sys.exit(code)
