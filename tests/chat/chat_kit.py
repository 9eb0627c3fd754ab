"""Independent checks for the chat tests: fence balance, and the text behind the parts."""

from __future__ import annotations

FENCE = "```"


def balanced(text: str) -> bool:
    """Whether every fence opened in ``text`` is closed (lines starting with ```)."""
    return sum(1 for line in text.splitlines() if line.startswith(FENCE)) % 2 == 0


def joins_to(parts: list[str], expected: str) -> bool:
    """Whether ``parts`` are ``expected`` cut in pieces, with only these additions: a part
    that ends inside a fence closes it (``\\n```` or ````` when it ends a line) and the
    next part reopens it with a first line starting with ```; the last part closes nothing.
    Searched exhaustively."""
    stack = [(0, 0, False)]  # (part index, position in expected, reopen expected)
    for _ in range(100_000):
        if not stack:
            return False
        index, position, reopen = stack.pop()
        if index == len(parts):
            if position == len(expected):
                return True
            continue
        part = parts[index]
        if reopen:
            first, newline, part = part.partition("\n")
            if not (first.startswith(FENCE) and newline):
                continue
        candidates = [(part, False)]
        if part.endswith(FENCE):
            body = part[: -len(FENCE)]
            candidates.append((body, True))
            if body.endswith("\n"):
                candidates.append((body[:-1], True))
        for content, closed in candidates:
            end = position + len(content)
            last = index == len(parts) - 1
            inside = not balanced(expected[:end])
            if expected.startswith(content, position) and (
                closed == inside or (last and not closed)
            ):
                stack.append((index + 1, end, closed))
    raise AssertionError("search did not finish")
