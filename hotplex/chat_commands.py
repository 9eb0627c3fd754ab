"""Core chat commands: help, status, stop, reset, model, mode.

They act on the conversation's own session (``ChatCommandContext.session_key``), through
the engine found in the services. ``model`` (what the session costs) and ``mode`` (what
the agent may do unasked) are privileged: only ``security.owners`` run them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hotplex.commands import ChatCommandContext
from hotplex.errors import UserFacingError
from hotplex.records import ChatCommandSpec

if TYPE_CHECKING:
    from hotplex.engine import Engine

__all__ = ["CORE_CHAT_COMMANDS"]

PERMISSION_MODES = ("default", "acceptEdits", "plan", "dontAsk", "auto")


def _engine(ctx: ChatCommandContext) -> Engine:
    from hotplex.engine import ENGINE

    engine: Engine | None = ctx.services.find(ENGINE) if ctx.services is not None else None
    if engine is None:
        raise UserFacingError("The agent engine is not running.")
    return engine


def _session_id(ctx: ChatCommandContext) -> str:
    if ctx.session_key is None:
        raise UserFacingError("This conversation has no session.")
    return _engine(ctx).session_id(ctx.session_key)


async def help_command(args: str, ctx: ChatCommandContext) -> str:
    from hotplex.templating import TEMPLATES

    template = ctx.services.get(TEMPLATES).get_template("core/text/help.md.j2")
    rendered: str = template.render(prefix=ctx.prefix, commands=ctx.commands.specs())
    return rendered.strip()


async def status_command(args: str, ctx: ChatCommandContext) -> str:
    engine = _engine(ctx)
    session = engine.get(_session_id(ctx))
    if session is None:
        return "No session yet: send a message to start one."
    info = session.info()
    return (
        f"Session `{info.session_id[:8]}`: {info.state}, {info.turns} turns, "
        f"{info.input_tokens + info.output_tokens} tokens, ${info.cost_usd:.4f}"
        + (f", {info.queued} queued" if info.queued else "")
    )


async def stop_command(args: str, ctx: ChatCommandContext) -> str:
    stopped = await _engine(ctx).interrupt(_session_id(ctx))
    return "Stopped the running turn." if stopped else "Nothing is running."


async def reset_command(args: str, ctx: ChatCommandContext) -> str:
    await _engine(ctx).reset(_session_id(ctx))
    return "Started a fresh conversation; the agent forgot this one."


async def model_command(args: str, ctx: ChatCommandContext) -> str:
    model = args.strip() or None
    await _engine(ctx).set_model(_session_id(ctx), model)
    return f"Model set to `{model}`." if model else "Model reset to the default."


async def mode_command(args: str, ctx: ChatCommandContext) -> str:
    mode = args.strip()
    if mode not in PERMISSION_MODES:
        return f"Usage: `{ctx.prefix}mode <{'|'.join(PERMISSION_MODES)}>`"
    await _engine(ctx).set_permission_mode(_session_id(ctx), mode)
    return f"Permission mode set to `{mode}`."


CORE_CHAT_COMMANDS = (
    ChatCommandSpec("help", "list the commands", help_command),
    ChatCommandSpec(
        "status", "this conversation's session: state, turns, tokens, cost", status_command
    ),
    ChatCommandSpec("stop", "stop the running turn", stop_command),
    ChatCommandSpec("reset", "forget this conversation and start afresh", reset_command),
    ChatCommandSpec(
        "model", "switch the model (no argument: the default)", model_command, privileged=True
    ),
    ChatCommandSpec("mode", "switch the permission mode", mode_command, privileged=True),
)
