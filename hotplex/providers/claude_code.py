"""The Claude Code provider: one persistent ``claude`` process per session.

Command line (protocols.md §1.1): ``claude -p --input-format stream-json --output-format
stream-json --verbose --include-partial-messages --permission-prompt-tool stdio
(--session-id ID | --resume ID) ...`` with cwd = the session's work directory and
``CLAUDE_CONFIG_DIR`` = the session's own state directory (concurrent CLIs sharing one
``.claude.json`` corrupt it). An ``initialize`` control request registers a PreToolUse hook
for every tool, so every call (read-only ones too) reaches the engine's gate before it runs;
calls the CLI wants to ask about arrive as ``can_use_tool`` and go through the gate again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotplex.agent_process import AgentSubprocess
from hotplex.aio import cancel_and_wait
from hotplex.binaries import find_binary
from hotplex.config import ProviderSettings
from hotplex.errors import AgentStartError, ProtocolError
from hotplex.events import AgentEvent, agent_event
from hotplex.interfaces import AgentProcess, Provider, ToolGate
from hotplex.providers.claude_content import user_content
from hotplex.providers.claude_events import ClaudeNormalizer
from hotplex.tool_names import canonical_tool_name, is_agent_tool
from hotplex.types import AgentStartSpec, ToolDecision, ToolRequest

if TYPE_CHECKING:
    from hotplex.agent_tools import AgentToolBridge, SdkServer

__all__ = ["ClaudeAgentProcess", "ClaudeCodeProvider", "transcript_path"]

log = logging.getLogger(__name__)

PRE_TOOL_HOOK = "hotplex_pre_tool_use"
INIT_TIMEOUT = 60.0
CONTROL_TIMEOUT = 10.0


def transcript_path(state_dir: Path, work_dir: Path, session_id: str) -> Path:
    """Where the CLI keeps a session's transcript: every non-alphanumeric character of the
    absolute cwd becomes ``-`` (protocols.md §5)."""
    key = re.sub(r"[^A-Za-z0-9]", "-", str(work_dir.resolve()))
    return state_dir / "projects" / key / f"{session_id}.jsonl"


def _validate_outgoing(message: Mapping[str, Any]) -> None:
    """One invalid stdin line kills the CLI (protocols.md §3.2): check before writing."""
    kind = message.get("type")
    if kind == "user":
        body = message.get("message")
        if not isinstance(body, Mapping) or body.get("role") != "user":
            raise ProtocolError("a user line needs message.role == 'user'")
        if not isinstance(body.get("content"), str | list):
            raise ProtocolError("a user line needs message.content (text or blocks)")
    elif kind == "control_request":
        request = message.get("request")
        if not isinstance(message.get("request_id"), str) or not isinstance(request, Mapping):
            raise ProtocolError("a control_request needs request_id and request")
        if not isinstance(request.get("subtype"), str):
            raise ProtocolError("a control_request needs request.subtype")
    elif kind == "control_response":
        response = message.get("response")
        if not isinstance(response, Mapping) or not isinstance(response.get("request_id"), str):
            raise ProtocolError("a control_response needs response.request_id")
    else:
        raise ProtocolError(f"refusing to write a {kind!r} line to the agent")


class ClaudeAgentProcess(AgentProcess):
    """A live ``claude`` process speaking stream-json and the control protocol."""

    def __init__(self, sub: AgentSubprocess, gate: ToolGate, mcp: SdkServer | None = None) -> None:
        self._sub = sub
        self._gate = gate
        self._mcp = mcp
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._handlers: dict[str, asyncio.Task[None]] = {}
        self._cancelled: set[str] = set()  # cancelled while queued (see _read_loop)
        self._messages: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._normalizer = ClaudeNormalizer()
        self._turn_running = False
        self._closed = False
        self._closing: asyncio.Task[None] | None = None
        self.init_info: dict[str, Any] = {}
        self._reader = asyncio.create_task(self._read_loop(), name=f"claude-read:{sub.pid}")

    @property
    def alive(self) -> bool:
        return not self._closed and self._sub.running

    @property
    def pid(self) -> int | None:
        return self._sub.pid

    @property
    def subprocess(self) -> AgentSubprocess:
        return self._sub

    # -- the read loop -----------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            while (message := await self._sub.read_message()) is not None:
                kind = message.get("type")
                if kind == "control_response":
                    self._on_control_response(message.get("response") or {})
                elif kind == "control_request" and self._turn_running and _asks(message):
                    self._messages.put_nowait(message)  # in order: see turn()
                elif kind == "control_request":
                    self._on_control_request(message)
                elif kind == "control_cancel_request":
                    request_id = str(message.get("request_id"))
                    task = self._handlers.pop(request_id, None)
                    if task is not None:
                        task.cancel()
                    else:  # still queued behind the turn's messages
                        self._cancelled.add(request_id)
                elif kind == "_hotplex_line_too_long":
                    await self._sub.stop(0.5)
                    break
                else:
                    self._messages.put_nowait(message)
        finally:
            self._messages.put_nowait(None)
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ProtocolError("the agent exited"))

    def _on_control_response(self, response: dict[str, Any]) -> None:
        future = self._pending.pop(str(response.get("request_id")), None)
        if future is None or future.done():
            return
        if response.get("subtype") == "error":
            future.set_exception(ProtocolError(str(response.get("error", "control error"))))
        else:
            future.set_result(response.get("response") or {})

    def _on_control_request(self, message: dict[str, Any]) -> None:
        request_id = str(message.get("request_id"))
        if request_id in self._cancelled:
            self._cancelled.discard(request_id)
            return
        request = message.get("request") or {}
        task = asyncio.create_task(
            self._answer(request_id, request), name=f"claude-ctl:{request_id}"
        )
        self._handlers[request_id] = task
        task.add_done_callback(lambda _: self._handlers.pop(request_id, None))

    async def _answer(self, request_id: str, request: dict[str, Any]) -> None:
        try:
            body = await self._handle_request(request)
            reply: dict[str, Any] = {"subtype": "success", "request_id": request_id}
            reply["response"] = body
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("answering the agent's %s request failed", request.get("subtype"))
            reply = {"subtype": "error", "request_id": request_id, "error": str(exc)}
        with contextlib.suppress(ProtocolError):
            await self._write({"type": "control_response", "response": reply})

    async def _handle_request(self, request: dict[str, Any]) -> dict[str, Any]:
        subtype = request.get("subtype")
        if subtype == "can_use_tool":
            tool_input = request.get("input") or {}
            decision = await self._gate(
                ToolRequest(
                    stage="permission",
                    tool=str(request.get("tool_name", "")),
                    input=tool_input,
                    tool_use_id=request.get("tool_use_id"),
                    reason=request.get("decision_reason"),
                    suggestions=tuple(request.get("permission_suggestions") or ()),
                    blocked_path=request.get("blocked_path"),
                )
            )
            tool_use_id = request.get("tool_use_id")
            if decision.behavior == "allow":
                updated = (
                    decision.updated_input if decision.updated_input is not None else tool_input
                )
                if self._mcp is not None:
                    self._mcp.approve(tool_use_id, str(request.get("tool_name", "")), updated)
                return {"behavior": "allow", "updatedInput": dict(updated)}
            if self._mcp is not None:
                self._mcp.withdraw(tool_use_id)
            answer: dict[str, Any] = {"behavior": "deny", "message": decision.message or "denied"}
            if decision.interrupt:
                answer["interrupt"] = True
            return answer
        if subtype == "hook_callback" and request.get("callback_id") == PRE_TOOL_HOOK:
            hook_input = request.get("input") or {}
            pre = ToolRequest(
                stage="pre",
                tool=str(hook_input.get("tool_name", "")),
                input=hook_input.get("tool_input") or {},
                tool_use_id=hook_input.get("tool_use_id") or request.get("tool_use_id"),
            )
            decision = await self._gate(pre)
            if self._mcp is not None and decision.behavior != "deny":
                self._mcp.approve(pre.tool_use_id, pre.tool, pre.input)
            return _hook_answer(decision)
        if subtype == "hook_callback":
            return {}
        if subtype == "mcp_message":
            return await self._mcp_message(request)
        raise ProtocolError(f"unsupported control request {subtype!r}")

    async def _mcp_message(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """A message for the in-process ``hotplex`` MCP server (hotplex.agent_tools.sdk)."""
        message = request.get("message")
        if not isinstance(message, Mapping):
            raise ProtocolError("an mcp_message needs a message object")
        server = request.get("server_name")
        if self._mcp is None or server != self._mcp.name:
            error = {"code": -32601, "message": f"no in-process MCP server {server!r}"}
            reply = {"jsonrpc": "2.0", "id": message.get("id"), "error": error}
        else:
            reply = await self._mcp.handle(message)
        return {"mcp_response": reply}

    # -- writing -------------------------------------------------------------------------

    async def _write(self, message: Mapping[str, Any]) -> None:
        _validate_outgoing(message)
        await self._sub.write_message(message)

    async def control(
        self, subtype: str, timeout: float = CONTROL_TIMEOUT, **fields: Any
    ) -> dict[str, Any]:
        """Send a control request (``interrupt``, ``set_model``, ...) and await its answer."""
        request_id = f"hp_{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self._write(
                {
                    "type": "control_request",
                    "request_id": request_id,
                    "request": {"subtype": subtype, **fields},
                }
            )
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(request_id, None)

    async def initialize(self, timeout: float = INIT_TIMEOUT) -> None:
        hooks = {"PreToolUse": [{"matcher": None, "hookCallbackIds": [PRE_TOOL_HOOK]}]}
        try:
            self.init_info = await self.control("initialize", timeout=timeout, hooks=hooks)
        except (TimeoutError, ProtocolError) as exc:
            tail = self._sub.stderr_tail()
            raise AgentStartError(
                f"claude did not initialize: {exc or type(exc).__name__}"
                + (f"; stderr: {tail}" if tail else "")
            ) from exc

    # -- turns -------------------------------------------------------------------------

    async def turn(self, prompt: str, *, images: Sequence[Path] = ()) -> AsyncIterator[AgentEvent]:
        if self._turn_running:
            raise ProtocolError("a turn is already running on this agent")
        self._turn_running = True
        try:
            self._drain_stray()
            self._normalizer.start_turn()
            if not self.alive:
                async for event in self._crashed():
                    yield event
                return
            content = (
                await asyncio.to_thread(user_content, prompt, images)
                if images
                else user_content(prompt)
            )
            await self._write(
                {
                    "type": "user",
                    "message": {"role": "user", "content": content},
                    "parent_tool_use_id": None,
                    "session_id": "default",
                }
            )
            while (message := await self._messages.get()) is not None:
                if message.get("type") == "control_request":
                    # a permission question is answered only once every line before it
                    # (the tool_use it asks about) has been yielded and published
                    self._on_control_request(message)
                    continue
                for event in self._normalizer.feed(message):
                    yield event
                if message.get("type") == "result":
                    return
            self._messages.put_nowait(None)
            async for event in self._crashed():
                yield event
        finally:
            self._turn_running = False
            self._drain_stray()

    def _drain_stray(self) -> None:
        """Drop the lines no turn reads (between turns, or after a turn was abandoned), but
        answer the questions among them: the agent waits for those."""
        while not self._messages.empty():
            message = self._messages.get_nowait()
            if message is None:
                self._messages.put_nowait(None)
                return
            if message.get("type") == "control_request":
                self._on_control_request(message)

    async def _crashed(self) -> AsyncIterator[AgentEvent]:
        returncode = await self._sub.wait(5.0)
        tail = self._sub.stderr_tail()
        text = f"the agent exited with code {returncode}"
        if tail:
            text += f": {tail}"
        yield agent_event("error", code="agent_crashed", message=text, retryable=True)
        yield agent_event("done", status="error", duration_ms=0)

    async def interrupt(self) -> None:
        if not self.alive:
            return
        self._normalizer.interrupt_requested = True
        with contextlib.suppress(TimeoutError, ProtocolError):
            await self.control("interrupt", timeout=5.0)

    async def close(self, grace: float = 5.0) -> None:
        """Stop the agent's process group; finishes even if the caller is cancelled."""
        if self._closing is None:
            self._closed = True
            self._closing = asyncio.create_task(self._close(grace), name=f"claude-close:{self.pid}")
        await asyncio.shield(self._closing)

    async def _close(self, grace: float) -> None:
        for task in list(self._handlers.values()):
            task.cancel()
        if self._sub.running:
            with contextlib.suppress(ProtocolError, OSError):
                await self._sub.close_stdin()
            await self._sub.wait(min(grace, 1.0))
        await self._sub.stop(grace)
        await cancel_and_wait(self._reader)


def _asks(message: Mapping[str, Any]) -> bool:
    """A control request that may ask a person about a tool the agent announced before it:
    it joins the turn's ordered stream (hook callbacks and the rest are answered at once)."""
    request = message.get("request")
    return isinstance(request, Mapping) and request.get("subtype") == "can_use_tool"


def _hook_answer(decision: ToolDecision) -> dict[str, Any]:
    if decision.behavior == "defer":
        return {}
    output: dict[str, Any] = {
        "hookEventName": "PreToolUse",
        "permissionDecision": decision.behavior,
    }
    if decision.message:
        output["permissionDecisionReason"] = decision.message
    return {"hookSpecificOutput": output}


def _claude_rule(rule: str) -> str:
    """A rule naming a HotPlex agent tool in OpenCode's spelling (``hotplex_echo``) in
    Claude Code's (``mcp__hotplex__echo``): one setting holds on both providers."""
    if re.fullmatch(r"[A-Za-z0-9_-]+", rule) and is_agent_tool(rule):
        return canonical_tool_name(rule)
    return rule


def _link_credentials(state_dir: Path) -> None:
    """A `claude login` keeps credentials in the user's config dir; link them in so the
    per-session config dir still authenticates."""
    source_dir = Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude")
    source = source_dir / ".credentials.json"
    target = state_dir / ".credentials.json"
    if source.is_file() and not target.exists():
        with contextlib.suppress(OSError):
            target.symlink_to(source)


class ClaudeCodeProvider(Provider):
    name = "claude-code"

    def __init__(
        self,
        settings: ProviderSettings,
        *,
        binary: Path | None = None,
        init_timeout: float = INIT_TIMEOUT,
        max_line: int = 64 * 1024 * 1024,
        agent_tools: AgentToolBridge | None = None,
    ) -> None:
        self.settings = settings
        #: HotPlex's agent tools, served in-process to every agent (``mcp__hotplex__<name>``).
        self.agent_tools = agent_tools if agent_tools is not None and agent_tools.tools else None
        self._binary = binary
        self._init_timeout = init_timeout
        self._max_line = max_line

    @property
    def binary(self) -> Path:
        if self._binary is None:
            found = find_binary("claude", self.settings.binary)
            if found is None:
                raise AgentStartError(
                    "the claude executable was not found; run `make setup` (installs the "
                    "pinned CLI into node_modules) or set provider.binary"
                )
            self._binary = found
        return self._binary

    def base_args(self) -> list[str]:
        s = self.settings
        args = [
            str(self.binary),
            "-p",
            "--input-format",
            "stream-json",
            "--output-format",
            "stream-json",
            "--verbose",
            "--include-partial-messages",
            "--permission-prompt-tool",
            "stdio",
            "--permission-mode",
            s.permission_mode,
        ]
        if s.model:
            args += ["--model", s.model]
        for rule in s.allowed_tools:
            args += ["--allowedTools", _claude_rule(rule)]
        for rule in s.disallowed_tools:
            args += ["--disallowedTools", _claude_rule(rule)]
        if s.append_system_prompt:
            args += ["--append-system-prompt", s.append_system_prompt]
        if s.mcp_config:
            args += ["--mcp-config", s.mcp_config]
        return args

    def profile(self) -> str:
        return "\0".join(self.base_args())

    def argv(self, spec: AgentStartSpec) -> list[str]:
        resume = transcript_path(spec.state_dir, spec.work_dir, spec.provider_session_id).exists()
        flag = "--resume" if resume else "--session-id"
        args = self.base_args()
        if self.agent_tools is not None:  # one --mcp-config: the user's servers plus ours
            from hotplex.agent_tools import SERVER_NAME, merge_mcp_config, sdk_server_entry

            if "--mcp-config" in args:
                at = args.index("--mcp-config")
                del args[at : at + 2]
            servers = {SERVER_NAME: sdk_server_entry()}
            args += ["--mcp-config", merge_mcp_config(self.settings.mcp_config, servers)]
        return [*args, flag, spec.provider_session_id, *spec.extra_args]

    async def start(self, spec: AgentStartSpec, gate: ToolGate) -> ClaudeAgentProcess:
        spec.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        spec.work_dir.mkdir(parents=True, exist_ok=True)
        env = {**spec.env, "CLAUDE_CONFIG_DIR": str(spec.state_dir)}
        if os.geteuid() == 0 and self.settings.permission_mode == "bypassPermissions":
            env.setdefault("IS_SANDBOX", "1")
        _link_credentials(spec.state_dir)
        sub = await AgentSubprocess.spawn(
            self.argv(spec),
            cwd=spec.work_dir,
            env=env,
            max_line=self._max_line,
            confinement=spec.confinement,
        )
        mcp = None
        if self.agent_tools is not None:
            from hotplex.agent_tools import SdkServer

            mcp = SdkServer(self.agent_tools, spec.session_id)
        process = ClaudeAgentProcess(sub, gate, mcp)
        try:
            await process.initialize(self._init_timeout)
        except BaseException:
            await process.close(grace=1.0)
            raise
        return process
