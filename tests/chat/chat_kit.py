"""Independent checks for the chat tests: fence balance, and the text behind the parts."""

from __future__ import annotations

import itertools

from hypothesis import strategies as st

FENCE = "```"
CLUSTERS = [
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # family (ZWJ sequence)
    "\U0001f1eb\U0001f1f7",  # flag
    "\U0001f44d\U0001f3fd",  # skin tone
    "e\u0301",  # combining acute
    "\u1100\u1161\u11a8",  # Hangul jamo
    "1\ufe0f\u20e3",  # keycap
    "\u4e2d",
    "\u6587",
    "\U0001f600",
]


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


def long_answer(size: int) -> str:
    pieces, n = [], 0
    while sum(map(len, pieces)) < size:
        n += 1
        pieces.append(f"Paragraph {n}: " + " ".join(f"word{i} 中文 😀" for i in range(n % 40 + 5)))
        pieces.append("\n\n")
        if n % 5 == 0:
            code = "".join(f"    value_{i} = compute({i}, 'x' * {n})\n" for i in range(n * 3))
            pieces.append(f"```python\ndef f{n}():\n{code}```\n\n")
        if n % 7 == 0:
            rows = "".join(f"| {i} | cell {i} é | {'x' * (i % 9)} |\n" for i in range(25))
            pieces.append(f"| a | b | c |\n|---|---|---|\n{rows}\n")
    return "".join(pieces)[:size]


def flat(lists: list[list[str]]) -> list[str]:
    return list(itertools.chain.from_iterable(lists))


def spaced(words: list[list[str]]) -> list[str]:
    return [*flat([[*word, " "] for word in words])[:-1], "\n"]


WORD = st.lists(st.sampled_from([*"abcxyz", *CLUSTERS]), min_size=1, max_size=12)
LINE = st.lists(WORD, min_size=1, max_size=12).map(spaced)
PARAGRAPH = st.lists(LINE, min_size=1, max_size=4).map(lambda lines: [*flat(lines), "\n"])
TABLE = st.integers(1, 12).map(lambda n: [f"| {i} | {'t ' * (i * 3 % 20)} |\n" for i in range(n)])
CODE = st.tuples(st.sampled_from(["", "python", "sh"]), st.lists(LINE, max_size=8)).map(
    lambda lc: [f"```{lc[0]}\n", *flat(lc[1]), "```\n"]
)
BLOCKS = st.lists(st.one_of(PARAGRAPH, TABLE.map(lambda r: [*r, "\n"]), CODE), max_size=12)
