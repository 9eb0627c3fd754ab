"""One name for a HotPlex agent tool, whichever agent calls it.

The agents spell an MCP tool of the ``hotplex`` server differently: Claude Code calls the
tool ``echo`` ``mcp__hotplex__echo``, OpenCode ``hotplex_echo`` (``<server>_<tool>``, with
characters outside ``[a-zA-Z0-9_-]`` replaced by ``_``). Wherever a policy names a tool
(session grants, an unattended session's ``allow_tools``, ``provider.allowed_tools`` and
``disallowed_tools``, plugin policies through ``ToolCall.tool_name``), both spellings are
compared as :func:`canonical_tool_name`, so one policy holds on both providers.

Any other tool name is its own canonical name. (An OpenCode tool of a user's MCP server
whose name starts with ``hotplex_`` would read as a HotPlex tool: the server name
``hotplex`` is reserved, and names like ``hotplex_x`` are best left to it.)
"""

from __future__ import annotations

import re

__all__ = [
    "AGENT_TOOL_SERVER",
    "canonical_tool_name",
    "claude_tool_name",
    "is_agent_tool",
    "opencode_tool_name",
]

#: The MCP server name HotPlex's agent tools are served under.
AGENT_TOOL_SERVER = "hotplex"

_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_CLAUDE_PREFIX = f"mcp__{AGENT_TOOL_SERVER}__"
_OPENCODE_PREFIX = f"{AGENT_TOOL_SERVER}_"


def opencode_tool_name(server: str, tool: str) -> str:
    """The name OpenCode gives an MCP tool (and its permission): ``<server>_<tool>``, with
    characters outside ``[a-zA-Z0-9_-]`` replaced by ``_``."""
    return _UNSAFE.sub("_", server) + "_" + _UNSAFE.sub("_", tool)


def claude_tool_name(tool: str) -> str:
    """The name Claude Code gives the HotPlex agent tool ``tool``: ``mcp__hotplex__<tool>``."""
    return _CLAUDE_PREFIX + tool


def canonical_tool_name(name: str) -> str:
    """The one name of a tool for policies: a HotPlex agent tool in either agent's spelling
    becomes ``mcp__hotplex__<tool>`` (characters outside ``[a-zA-Z0-9_-]`` as ``_``); any
    other name is returned as it is."""
    if name.startswith(_CLAUDE_PREFIX) and len(name) > len(_CLAUDE_PREFIX):
        return _CLAUDE_PREFIX + _UNSAFE.sub("_", name[len(_CLAUDE_PREFIX) :])
    if name.startswith(_OPENCODE_PREFIX) and len(name) > len(_OPENCODE_PREFIX):
        return _CLAUDE_PREFIX + _UNSAFE.sub("_", name[len(_OPENCODE_PREFIX) :])
    return name


def is_agent_tool(name: str) -> bool:
    """Whether ``name`` (either spelling) is a HotPlex agent tool."""
    return canonical_tool_name(name) != name or (
        name.startswith(_CLAUDE_PREFIX) and len(name) > len(_CLAUDE_PREFIX)
    )
