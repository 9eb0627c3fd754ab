"""Splitting a long answer into messages below a platform's length limit.

A cut prefers, in order: the end of a paragraph, the end of a line, a space (outside a table
row), then any place between two characters (:func:`~hotplex.chat.measure.is_boundary`);
the first three count only in the second half of the room a part has. A table row is cut
only when it alone is longer than a message. A cut inside a fenced code block closes the
fence at the end of the part (``suffix``) and opens it again, with its info string, at the
start of the next one (``prefix``), so that every part renders as code.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass

from hotplex.chat.measure import is_boundary

__all__ = ["Fences", "Part", "cut", "next_prefix", "part_between", "split_text"]

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
#: A reopened fence longer than this loses its info string.
_MAX_OPENER = 24


@dataclass(frozen=True, slots=True)
class Part:
    """One message: ``prefix + source[start:end] + suffix``."""

    start: int
    end: int
    prefix: str
    suffix: str
    text: str


class Fences:
    """The fenced code blocks of a text: which fence is open at any position."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.line_starts: list[int] = []
        self.open_at: list[str | None] = []  # the fence open at the start of each line
        self.delimiter: list[bool] = []
        self.table_row: list[bool] = []
        self.longest = 0
        opener: str | None = None
        marker = ""
        position = 0
        for line in text.splitlines(keepends=True):
            self.line_starts.append(position)
            self.open_at.append(opener)
            content = line.rstrip("\r\n")
            match = _FENCE.fullmatch(content)
            is_delimiter = False
            if match and opener is None and not (match[1][0] == "`" and "`" in match[2]):
                opener, marker, is_delimiter = content.lstrip(" "), match[1], True
                self.longest = max(self.longest, len(marker))
            elif match and opener is not None:
                run = match[1]
                if run[0] == marker[0] and len(run) >= len(marker) and not match[2].strip():
                    opener, is_delimiter = None, True
            self.delimiter.append(is_delimiter)
            self.table_row.append(opener is None and content.lstrip().startswith("|"))
            position += len(line)

    def _line(self, index: int) -> int:
        return bisect.bisect_right(self.line_starts, index) - 1

    def open_fence(self, index: int) -> str | None:
        """The opening line of the fence open at ``index`` (a cut there), or None."""
        line = self._line(index)
        if line < 0:
            return None
        if self.line_starts[line] == index:
            return self.open_at[line]
        following = self.open_at[line + 1] if line + 1 < len(self.open_at) else None
        return self.open_at[line] if not self.delimiter[line] else following

    def inside_row(self, index: int) -> bool:
        """Whether ``index`` is inside (not at the start of) a table row or fence line."""
        line = self._line(index)
        if line < 0 or self.line_starts[line] == index:
            return False
        return self.table_row[line] or self.delimiter[line]


def _marks(opener: str | None, body: str) -> tuple[str, str]:
    """(prefix to reopen, suffix to close) a fence cut at the end of ``body``."""
    if opener is None:
        return "", ""
    run = re.match(r"`+|~+", opener)
    fence = run[0] if run else "```"
    close = fence if body.endswith("\n") or not body else "\n" + fence
    reopen = opener if len(opener) <= _MAX_OPENER else fence
    return reopen + "\n", close


def _room(text: str, start: int, budget: int, length: Callable[[str], int], prefix: str) -> int:
    """The largest end with ``length(prefix + text[start:end]) <= budget``."""
    low, high = start, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if length(prefix + text[start:middle]) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def _good_end(fences: Fences, start: int, low: int, high: int) -> int | None:
    """The best place in ``[low, high]`` to end a part that begins at ``start``: a
    paragraph end, a line end, a space (these three in the second half), the start of the
    table row that does not fit, or a boundary outside rows; None when there is none."""
    text = fences.text
    half = max(low, start + (high - start) // 2)
    for needle in ("\n\n", "\n"):
        found = text.rfind(needle, start, high)
        end = found + len(needle)
        if found >= 0 and end >= half and is_boundary(text, end):
            return end
    space = text.rfind(" ", start, high)
    while space >= 0 and space + 1 >= half:
        if not fences.inside_row(space + 1) and is_boundary(text, space + 1):
            return space + 1
        space = text.rfind(" ", start, space)
    line = text.rfind("\n", start, high)
    if fences.inside_row(high) and line >= 0 and line + 1 >= low:
        return line + 1
    for position in range(high, low - 1, -1):
        if is_boundary(text, position) and not fences.inside_row(position):
            return position
    return None


def _choose(fences: Fences, start: int, low: int, high: int) -> int:
    """Where to end a part that begins at ``start`` and may end up to ``high``: at a good
    place at or after ``low`` if there is one, else at a good place anywhere, else at a
    boundary (inside a row longer than a part), else at ``high`` (inside a character
    longer than a part)."""
    for floor in (low, start + 1):
        found = _good_end(fences, start, floor, high)
        if found is not None:
            return found
    for position in range(high, start, -1):
        if is_boundary(fences.text, position):
            return position
    return high


def cut(
    fences: Fences,
    start: int,
    *,
    limit: int,
    length: Callable[[str], int] = len,
    prefix: str = "",
    min_end: int = 0,
    growing: bool = False,
) -> Part:
    """The part that begins at ``start`` (after ``prefix``) and ends as late as the limit
    allows at a good place, not before ``min_end`` when it can; the whole rest when it
    fits. ``growing``: the text may still grow, so the rest counts as fitting only with
    room left to close a fence, as a later cut would leave (what is shown of it now is
    never cut off later)."""
    text = fences.text
    reserve = length("\n" + "`" * fences.longest) if fences.longest else 0
    if growing:
        reserve = max(reserve, length("\n```"))
    if _room(text, start, limit - reserve if growing else limit, length, prefix) >= len(text):
        end = len(text)
    else:
        high = _room(text, start, limit - reserve, length, prefix)
        if high <= start:  # a fence too long to close within the limit: do not close it
            high = _room(text, start, limit, length, prefix)
        if high <= start:
            raise ValueError(f"a limit of {limit} leaves no room after {prefix!r}")
        end = _choose(fences, start, min(max(min_end, start + 1), high), high)
    return part_between(fences, start, end, limit=limit, length=length, prefix=prefix)


def part_between(
    fences: Fences,
    start: int,
    end: int,
    *,
    limit: int,
    length: Callable[[str], int] = len,
    prefix: str = "",
) -> Part:
    """The part from ``start`` to exactly ``end`` (after ``prefix``), closing the fence
    open at ``end`` as :func:`cut` does; for a message that ends where it must (a native
    stream that reached its lifetime ends where it was)."""
    text = fences.text
    body = text[start:end]
    close = _marks(fences.open_fence(end), body)[1] if end < len(text) else ""
    if close and length(prefix + body + close) > limit:
        close = ""
    return Part(start, end, prefix, close, prefix + body + close)


def next_prefix(fences: Fences, part: Part) -> str:
    """What the part after ``part`` starts with: the reopened fence, if one is open."""
    if part.end >= len(fences.text):
        return ""
    return _marks(fences.open_fence(part.end), fences.text[part.start : part.end])[0]


def split_text(text: str, *, limit: int, length: Callable[[str], int] = len) -> list[Part]:
    """Every part of ``text``, each at most ``limit`` long by ``length``."""
    fences = Fences(text)
    parts: list[Part] = []
    start, prefix = 0, ""
    while start < len(text):
        part = cut(fences, start, limit=limit, length=length, prefix=prefix)
        parts.append(part)
        start, prefix = part.end, next_prefix(fences, part)
    return parts
