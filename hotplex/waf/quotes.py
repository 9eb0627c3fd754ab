"""Quoted commands in prompt prose: ``Make space: "rm -rf /var"``, ``'chmod -R 777 /'
please``. A string in double or single quotes that opens after a blank, bracket or colon,
closes before one, stays on one line (at most 400 characters) and starts with a command is
examined like inline code. A quoted string that is an argument is not: after a flag
(``grep -r 'rm -rf' docs``) or after a command name other than an execution verb (``echo
'rm -rf /' > notes.txt``; ``run 'rm -rf /'`` is examined)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hotplex.waf._re2 import compile_pattern
from hotplex.waf._text import word_set

__all__ = ["quoted_commands"]

# a blank, bracket or colon, then a quoted string on one line (RE2: linear time)
_QUOTED = compile_pattern(r"(?m)(?:^|[\s(\[:,])(\"[^\"\n]{2,400}\"|'[^'\n]{2,400}')")
CLOSES = frozenset(" \t\n.,;:!?)]")
FEED = word_set("run type exec execute paste enter try do use sudo")


def _quotes(prose: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each quoted string, quotes included, closed before a blank, a
    punctuation mark or the end."""
    subject: str | bytes = prose.encode("ascii") if prose.isascii() else prose
    n = len(prose)
    pos = 0
    while pos < n:
        m = _QUOTED.search(subject, pos)
        if m is None:
            return
        start, end = m.start(1), m.end(1)
        if end == n or prose[end] in CLOSES:
            yield start, end
            pos = end
        else:
            pos = start + 1  # not closed here; its closing quote may open another string


def quoted_commands(prose: str, code_trigger: Any) -> list[tuple[int, int]]:
    """(start, end) of the quoted strings in ``prose`` (code already blanked out), quotes
    included, that start with a command; ``code_trigger`` is the compiled pattern that
    finds a command name in command position."""
    if '"' not in prose and "'" not in prose:
        return []
    found = []
    for start, end in _quotes(prose):
        body = prose[start + 1 : end - 1]
        if not body[:1].strip() or code_trigger.match(body) is None:
            continue
        line = prose[max(0, start - 64) : start].rsplit("\n", 1)[-1].split()
        prev = line[-1] if line else ""
        if prev.startswith("-") or "=" in prev:
            continue
        if prev and prev.lower() not in FEED and code_trigger.match(prev + " '") is not None:
            continue
        found.append((start, end))
    return found
