"""Checks of agent tool calls (Claude Code tool names and input keys)."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotplex.waf.model import Hit, Verdict, WafInputError

if TYPE_CHECKING:
    from hotplex.waf.engine import Waf

__all__ = ["check_tool"]

BASH_TOOLS = frozenset({"Bash", "bash", "shell", "Shell"})
READ_TOOLS = frozenset(
    {"Read", "NotebookRead", "Glob", "Grep", "LS", "read", "glob", "grep", "list"}
)
WRITE_TOOLS = frozenset({"Write", "Edit", "MultiEdit", "NotebookEdit", "write", "edit", "patch"})
FETCH_TOOLS = frozenset({"WebFetch", "webfetch", "fetch"})
PATH_KEYS = ("file_path", "path", "filePath", "notebook_path")
SCRIPT_SUFFIXES = (
    ".sh",
    ".bash",
    ".zsh",
    ".ksh",
    ".command",
    ".bashrc",
    ".zshrc",
    ".profile",
    ".bash_profile",
    "crontab",
)


def _combine(verdicts: list[Verdict]) -> Verdict:
    hits = tuple(h for v in verdicts for h in v.hits)
    return Verdict.from_hits(hits)


def _written_text(tool: str, tool_input: Mapping[str, Any]) -> str:
    if tool in ("Write", "write"):
        return str(tool_input.get("content") or "")
    if tool in ("Edit", "edit"):
        return str(tool_input.get("new_string") or "")
    if tool == "MultiEdit":
        edits = tool_input.get("edits") or []
        return "\n".join(str(e.get("new_string") or "") for e in edits if isinstance(e, Mapping))
    return ""


def _is_script(path: str, text: str) -> bool:
    name = posixpath.basename(path)
    first = text.lstrip()[:128]
    return name.endswith(SCRIPT_SUFFIXES) or (
        first.startswith("#!") and any(s in first.split("\n", 1)[0] for s in ("sh", "bash"))
    )


def _script_content(waf: Waf, path: str, text: str) -> Verdict:
    """Commands written into a script run later: check them, but ask rather than block."""
    try:
        verdict = waf.check_command(text)
    except WafInputError:
        return Verdict("allow")
    hits = []
    for hit in verdict.hits:
        action = "ask" if hit.action == "block" else hit.action
        hits.append(
            Hit(
                hit.rule_id,
                hit.category,
                hit.level,
                action,
                hit.rule_action,
                hit.description,
                None,
                hit.matched,
                "script-content",
                hit.origin,
            )
        )
    return Verdict.from_hits(tuple(hits))


def check_tool(waf: Waf, tool: str, tool_input: Mapping[str, Any], *, work_dir: Path) -> Verdict:
    if tool in BASH_TOOLS:
        command = tool_input.get("command")
        return waf.check_command(command) if isinstance(command, str) else Verdict("allow")
    if tool in FETCH_TOOLS:
        url = tool_input.get("url")
        return waf.check_url(url) if isinstance(url, str) else Verdict("allow")
    write = tool in WRITE_TOOLS
    if not write and tool not in READ_TOOLS:
        return Verdict("allow")
    verdicts: list[Verdict] = []
    for key in PATH_KEYS:
        value = tool_input.get(key)
        if isinstance(value, str) and value:
            verdicts.append(waf.check_path(value, work_dir=work_dir, write=write))
    pattern = tool_input.get("pattern")
    if tool in ("Glob", "glob") and isinstance(pattern, str) and pattern.startswith(("/", "~")):
        verdicts.append(
            waf.check_path(
                pattern.split("*", 1)[0].rstrip("/") or "/", work_dir=work_dir, write=False
            )
        )
    text = _written_text(tool, tool_input)
    target = next((str(tool_input[k]) for k in PATH_KEYS if tool_input.get(k)), "")
    if write and text and _is_script(target, text):
        verdicts.append(_script_content(waf, target, text))
    if not verdicts:
        return Verdict("allow")
    return _combine(verdicts)
