"""Measuring text the way a platform counts it, and where a message may end.

A message may end only between two user-perceived characters (grapheme clusters): never
inside a surrogate pair, a combining sequence (a letter and its accents), an emoji ZWJ
sequence or modifier, a flag (a pair of regional indicators), a Hangul syllable spelled in
jamo, or CR LF. :func:`is_boundary` applies these rules of Unicode's extended grapheme
clusters (UAX #29); it does not implement the rarer ones (prepended concatenation marks,
Indic conjuncts), so it may refuse a few valid boundaries but never accepts one of the
cases above.
"""

from __future__ import annotations

import unicodedata

__all__ = ["codepoint_length", "is_boundary", "utf8_length", "utf16_length"]


def codepoint_length(text: str) -> int:
    """Code points (Python's ``len``)."""
    return len(text)


def utf16_length(text: str) -> int:
    """UTF-16 code units, as JavaScript counts (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def utf8_length(text: str) -> int:
    """UTF-8 bytes, for platforms whose limits are in bytes (a CJK character counts 3)."""
    return len(text.encode("utf-8", "surrogatepass"))


def _extends(char: str) -> bool:
    """Whether ``char`` attaches to the character before it."""
    code = ord(char)
    if char in "\u200c\u200d" or 0xDC00 <= code <= 0xDFFF:  # ZWNJ, ZWJ, low surrogate
        return True
    if 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF:  # variation selectors
        return True
    if 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F:  # skin tones, tags
        return True
    if 0x1160 <= code <= 0x11FF or 0xD7B0 <= code <= 0xD7FF:  # Hangul vowel/final jamo
        return True
    return unicodedata.category(char) in ("Mn", "Me", "Mc")


def _regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _hangul_leading(char: str) -> bool:
    code = ord(char)
    return 0x1100 <= code <= 0x115F or 0xA960 <= code <= 0xA97F


def _hangul_follows_leading(char: str) -> bool:
    code = ord(char)
    return _hangul_leading(char) or 0xAC00 <= code <= 0xD7A3


def is_boundary(text: str, index: int) -> bool:
    """Whether a message may end at ``index`` (between ``text[index-1]`` and
    ``text[index]``)."""
    if index <= 0 or index >= len(text):
        return True
    before, after = text[index - 1], text[index]
    if before == "\r" and after == "\n":
        return False
    if before == "\u200d" or _extends(after):
        return False
    if _hangul_leading(before) and _hangul_follows_leading(after):
        return False
    if _regional(before) and _regional(after):
        run = 0
        position = index - 1
        while position >= 0 and _regional(text[position]):
            run += 1
            position -= 1
        return run % 2 == 0
    return True
