"""Lengths as platforms count them, and where a message may end."""

from __future__ import annotations

import pytest

from hotplex.chat import codepoint_length, is_boundary, utf8_length, utf16_length

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # man ZWJ woman ZWJ girl
FLAGS = "\U0001f1eb\U0001f1f7\U0001f1ef\U0001f1f5"  # FR JP
THUMB = "\U0001f44d\U0001f3fd"  # thumbs up, medium skin tone
E_ACUTE = "e\u0301"
HANGUL_JAMO = "\u1100\u1161\u11a8"  # one syllable spelled in three jamo


def test_lengths_count_as_platforms_do() -> None:
    text = "a中😀"
    assert codepoint_length(text) == 3
    assert utf16_length(text) == 1 + 1 + 2
    assert utf8_length(text) == 1 + 3 + 4


@pytest.mark.parametrize(
    ("text", "inside"),
    [
        (FAMILY, range(1, len(FAMILY))),
        (THUMB, [1]),
        (E_ACUTE, [1]),
        ("a\r\nb", [2]),
        (HANGUL_JAMO, [1, 2]),
        ("\u2764\ufe0f", [1]),  # heart + variation selector 16
        ("1\ufe0f\u20e3", [1, 2]),  # keycap one
    ],
)
def test_no_boundary_inside_a_cluster(text: str, inside: range | list[int]) -> None:
    for index in inside:
        assert not is_boundary(text, index), (text, index)
    assert is_boundary(text, 0) and is_boundary(text, len(text))


def test_flags_pair_up() -> None:
    assert [is_boundary(FLAGS, i) for i in range(len(FLAGS) + 1)] == [
        True, False, True, False, True,
    ]  # fmt: skip


def test_ordinary_text_has_boundaries_everywhere() -> None:
    text = "ab 中文 x\n"
    assert all(is_boundary(text, i) for i in range(len(text) + 1))
    assert is_boundary(f"a{FAMILY}", 1) and is_boundary(f"{E_ACUTE}x", 2)
