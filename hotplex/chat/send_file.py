"""The agent tool ``send_file``: the agent uploads a file (or image) from its work directory
to the conversation its session belongs to, on any platform, through the delivery router.

Registered by core (``hotplex_register_agent_tools``); the agent sees it as
``mcp__hotplex__send_file`` (Claude Code) or ``hotplex_send_file`` (OpenCode), and every
call goes through the same approvals as any tool. Arguments: ``path`` (relative to the
session's work directory) and an optional ``title``. A path that resolves (symlinks
followed) outside the work directory, or to anything but a regular file, is refused with a
tool error, as is a session without a conversation.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from hotplex.errors import UserFacingError
from hotplex.records import AgentToolSpec, ToolCallContext

__all__ = ["SEND_FILE", "resolve_inside", "send_file", "send_file_tool"]

SEND_FILE = "send_file"

_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "path": {
            "type": "string",
            "description": "The file to send, relative to your working directory.",
        },
        "title": {"type": "string", "description": "A short caption shown with the file."},
    },
    "required": ["path"],
    "additionalProperties": False,
}


def resolve_inside(work_dir: Path, path: str) -> Path:
    """``path`` (relative to ``work_dir``, or absolute) resolved with its symlinks; raises
    :class:`~hotplex.errors.UserFacingError` unless it is a regular file inside
    ``work_dir``."""
    if not path or "\x00" in path:
        raise UserFacingError("path must be a file name relative to the working directory")
    root = work_dir.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or target == root:
        raise UserFacingError(f"{path}: outside the working directory; only its files can be sent")
    if not target.exists():
        raise UserFacingError(f"{path}: no such file")
    if not target.is_file():
        raise UserFacingError(f"{path}: not a regular file")
    return target


async def send_file(args: dict[str, Any], ctx: ToolCallContext) -> str:
    """The tool's handler (see the module docstring)."""
    from hotplex.chat.router import DELIVERY
    from hotplex.engine import ENGINE

    path, title = args.get("path"), args.get("title") or ""
    if not isinstance(path, str) or not isinstance(title, str):
        raise UserFacingError("path (and title) must be strings")
    if not ctx.address:
        raise UserFacingError("this session has no conversation to send a file to")
    services = ctx.plugin_context.services
    engine = services.find(ENGINE)
    session = engine.get(ctx.session_id) if engine is not None else None
    if session is None:
        raise UserFacingError("the session is not running")
    router = services.find(DELIVERY)
    if router is None:
        raise UserFacingError("no chat delivery is running here")
    file = await asyncio.to_thread(resolve_inside, session.work_dir, path)
    await router.send_file(ctx.address, file, title)
    return f"Sent {path} to the conversation."


def send_file_tool() -> AgentToolSpec:
    """The ``send_file`` tool record core registers."""
    return AgentToolSpec(
        SEND_FILE,
        "Send a file or image from your working directory to the person you are talking "
        "with (it appears in the chat). path: relative to your working directory.",
        _SCHEMA,
        send_file,
    )
