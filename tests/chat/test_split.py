"""Splitting long answers: within the limit, nothing lost, fences closed and reopened,
table rows and user-perceived characters whole."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from chat_kit import BLOCKS, balanced, flat, joins_to, long_answer
from hypothesis import given
from hypothesis import strategies as st

from hotplex.chat import Part, split_text, utf8_length, utf16_length

LENGTHS: dict[str, Callable[[str], int]] = {"len": len, "utf16": utf16_length, "utf8": utf8_length}


def check(text: str, parts: list[Part], limit: int, length: Callable[[str], int]) -> None:
    """Every property a split must have, checked against the parts' own claims and
    independently (fence counting, exhaustive reconstruction)."""
    assert parts or not text
    position = 0
    for part in parts:
        assert part.start == position
        assert part.text == part.prefix + text[part.start : part.end] + part.suffix
        assert length(part.text) <= limit, (length(part.text), limit)
        position = part.end
    assert position == len(text)
    assert joins_to([p.text for p in parts], text)
    for part in parts[:-1]:
        assert balanced(part.text), part.text
    if parts:
        assert balanced(parts[-1].text) == balanced(text)


def allowed_cuts(tokens: list[str]) -> set[int]:
    """Offsets between tokens (a cluster, a table row and a fence line are one token)."""
    cuts, position = set(), 0
    for token in tokens:
        position += len(token)
        cuts.add(position)
    return cuts


# -- a long answer ----------------------------------------------------------------------


@pytest.mark.parametrize("length_name", sorted(LENGTHS))
def test_sixty_thousand_characters_arrive_complete(length_name: str) -> None:
    text = long_answer(60_000)
    assert len(text) == 60_000 and text.count("```python") >= 5
    length = LENGTHS[length_name]
    parts = split_text(text, limit=4000, length=length)
    check(text, parts, 4000, length)
    reopened = [p for p in parts if p.prefix]
    assert reopened, "the answer should be cut inside a code block at least once"
    assert all(p.prefix == "```python\n" for p in reopened)
    assert len(parts) <= 2 * (length(text) // 4000 + 1), "parts are needlessly short"


def test_cuts_prefer_paragraphs_then_lines() -> None:
    text = ("a" * 30 + " ") * 20 + "\n\n" + ("b" * 30 + " ") * 5 + "\n" + "c" * 100
    parts = split_text(text, limit=800)
    assert parts[0].end == text.index("\n\n") + 2
    lines = "".join(f"line {i} of the log\n" for i in range(100))
    assert all(p.text.endswith("\n") for p in split_text(lines, limit=300)[:-1])


def test_table_rows_stay_whole() -> None:
    intro = " ".join(f"word{i}" for i in range(150)) + "\n"  # one long line, cut at spaces
    # rows of about 100 and 400 characters: a long row does not fit after a short one
    rows = [f"| {i:03} | {'x ' * 40} | {'y ' * (150 * (i % 2))} |\n" for i in range(200)]
    text = intro + "".join(rows)
    parts = split_text(text, limit=500)
    row_starts = {len(intro) + sum(map(len, rows[:i])) for i in range(len(rows) + 1)}
    cuts = [p.end for p in parts if p.end > len(intro)]
    assert len(cuts) > 10
    assert all(cut in row_starts for cut in cuts), [c for c in cuts if c not in row_starts]


def test_a_cluster_longer_than_a_part_is_cut_between_code_points() -> None:
    text = "e" + "\u0301" * 300
    parts = split_text(text, limit=100)
    check(text, parts, 100, len)


# -- properties -------------------------------------------------------------------------


@given(
    BLOCKS,
    st.booleans(),
    st.integers(64, 400),
    st.sampled_from(sorted(LENGTHS)),
)
def test_split_properties(
    blocks: list[list[str]], unclosed: bool, limit: int, length_name: str
) -> None:
    tokens = flat(blocks)
    if unclosed:
        tokens += ["```sh\n", "echo ", "open"]
    text = "".join(tokens)
    length = LENGTHS[length_name]
    parts = split_text(text, limit=limit, length=length)
    check(text, parts, limit, length)
    cuts = allowed_cuts(tokens)
    assert all(p.end in cuts for p in parts), [p.end for p in parts if p.end not in cuts]


@given(st.text(max_size=3000), st.integers(64, 300), st.sampled_from(sorted(LENGTHS)))
def test_any_text_splits_within_the_limit(text: str, limit: int, length_name: str) -> None:
    length = LENGTHS[length_name]
    parts = split_text(text, limit=limit, length=length)
    assert "".join(text[p.start : p.end] for p in parts) == text
    assert all(length(p.text) <= limit for p in parts)
