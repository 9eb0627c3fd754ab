"""The providers core ships: Claude Code and OpenCode (imported when first used)."""

from __future__ import annotations

from hotplex.context import PluginContext
from hotplex.interfaces import Provider
from hotplex.records import ProviderSpec

__all__ = ["core_providers"]


def _claude_code(ctx: PluginContext) -> Provider:
    from hotplex.agent_tools import AGENT_TOOLS
    from hotplex.providers.claude_code import ClaudeCodeProvider

    return ClaudeCodeProvider(ctx.settings.provider, agent_tools=ctx.services.find(AGENT_TOOLS))


def _opencode(ctx: PluginContext) -> Provider:
    from hotplex.agent_tools import AGENT_TOOLS
    from hotplex.providers.opencode import OpenCodeProvider

    return OpenCodeProvider(
        ctx.settings.provider,
        data_dir=ctx.settings.engine.data_dir,
        agent_tools=ctx.services.find(AGENT_TOOLS),
    )


def core_providers() -> list[ProviderSpec]:
    return [
        ProviderSpec(
            name="claude-code",
            factory=_claude_code,
            description="Claude Code CLI in persistent stream-json mode",
            binary="claude",
        ),
        ProviderSpec(
            name="opencode",
            factory=_opencode,
            description="OpenCode over one shared `opencode serve`",
            binary="opencode",
        ),
    ]
