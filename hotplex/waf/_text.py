"""Small text helpers shared by the WAF modules."""

from __future__ import annotations

__all__ = ["word_set"]


def word_set(words: str) -> frozenset[str]:
    """The blank-separated words of ``words`` as a set."""
    return frozenset(words.split())
