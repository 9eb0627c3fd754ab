"""google-re2 (linear-time regular expressions), typed for the rest of the package."""

from __future__ import annotations

from typing import Any

import re2 as _re2  # type: ignore[import-untyped,unused-ignore]

__all__ = ["Pattern", "PatternSet", "compile_pattern", "error", "escape"]

Pattern = Any  # re2._Regexp: search/match/fullmatch/finditer over str or bytes
error: type[Exception] = _re2.error


def compile_pattern(pattern: str) -> Pattern:
    """Compile an RE2 pattern with a 64 MiB memory budget (raises :data:`error`)."""
    options = _re2.Options()
    options.max_mem = 64 << 20
    options.log_errors = False  # the error is raised (and reported) instead
    return _re2.compile(pattern, options)


def escape(text: str) -> str:
    return str(_re2.escape(text))


class PatternSet:
    """Which of many patterns match a text, in one pass (RE2::Set).

    ``matching`` returns None when the set cannot answer (RE2 reports no match when its
    DFA runs out of memory), so callers must treat None as "unknown", never as "none"."""

    def __init__(self, patterns: list[str]) -> None:
        options = _re2.Options()
        options.max_mem = 64 << 20
        options.log_errors = False
        self._set = _re2.Set.SearchSet(options)
        for pattern in patterns:
            self._set.Add(pattern)
        self._set.Compile()

    def matching(self, data: bytes) -> list[int] | None:
        found = self._set.Match(data)
        return list(found) if found else None
