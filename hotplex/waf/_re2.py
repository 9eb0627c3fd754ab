"""google-re2 (linear-time regular expressions), typed for the rest of the package."""

from __future__ import annotations

from typing import Any

import re2 as _re2  # type: ignore[import-untyped]

__all__ = ["Pattern", "compile_pattern", "error", "escape"]

Pattern = Any  # re2._Regexp: search/match/fullmatch/finditer over str or bytes
error: type[Exception] = _re2.error


def compile_pattern(pattern: str) -> Pattern:
    """Compile an RE2 pattern with a 64 MiB memory budget (raises :data:`error`)."""
    options = _re2.Options()
    options.max_mem = 64 << 20
    return _re2.compile(pattern, options)


def escape(text: str) -> str:
    return str(_re2.escape(text))
