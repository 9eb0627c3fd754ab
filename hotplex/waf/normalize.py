"""Input limits and text normalisation, with a map back to original offsets.

Each pass rewrites only the places its pattern finds and records, per rewritten piece,
where it came from, so a span in the normalised text maps back to the original text.
"""

from __future__ import annotations

import html
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field

from hotplex.waf.model import WafInputError

__all__ = ["Normalized", "check_input", "fold_lookalikes", "fold_unicode", "normalize"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_REFUSED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_NAMES = {0: "NUL byte", 0x1B: "escape character (ANSI sequence)", 0x7F: "DEL character"}

# zero-width, joiners, bidi controls, variation selectors, invisible fillers, tags
# (with combining marks that overlay Latin letters: r\u0336m)
_INVISIBLE = re.compile(
    "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb"
    "\U0001d173-\U0001d17a\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)
_NON_ASCII_RUN = re.compile(r"[\x00-\x7f]?[^\x00-\x7f]+")

# symbols that look like ASCII punctuation or blanks: always folded
_SYMBOLS = {
    " ": "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u202f\u205f\u3000",
    "\n": "\u2028\u2029",
    "-": "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d",
    "'": "\u2018\u2019\u201a\u201b\u2032\u02bc",
    '"': "\u201c\u201d\u201e\u201f\u2033",
    "/": "\u2215\u2044\u29f8",
    "\\": "\u29f9",
}
# Cyrillic and Greek letters that look like Latin ones: folded in words made only of them
# and Latin letters (so "рм" becomes "rm" but Russian prose stays Russian)
_LETTERS = {
    "a": "\u0430\u03b1\u0251",
    "r": "\u0433\u1d26",
    "m": "\u043c",
    "t": "\u0442",
    "k": "\u043a\u03ba",
    "e": "\u0435\u0454",
    "o": "\u043e\u03bf",
    "p": "\u0440\u03c1",
    "c": "\u0441\u03f2",
    "y": "\u0443",
    "x": "\u0445\u03c7",
    "i": "\u0456\u03b9\u0131",
    "j": "\u0458",
    "s": "\u0455",
    "h": "\u04bb",
    "d": "\u0501",
    "q": "\u051b",
    "w": "\u051d",
    "l": "\u04cf",
    "v": "\u03bd",
    "A": "\u0410\u0391",
    "B": "\u0412\u0392",
    "E": "\u0415\u0395",
    "K": "\u041a\u039a",
    "M": "\u041c\u039c",
    "H": "\u041d\u0397",
    "O": "\u041e\u039f",
    "P": "\u0420\u03a1",
    "C": "\u0421",
    "T": "\u0422\u03a4",
    "X": "\u0425\u03a7",
    "I": "\u0406\u0399",
    "J": "\u0408",
    "S": "\u0405",
    "Z": "\u0396",
    "N": "\u039d",
    "Y": "\u03a5",
}
_FOLD_SYMBOLS = {ord(c): to for to, chars in _SYMBOLS.items() for c in chars}
_FOLD_LETTERS = {ord(c): to for to, chars in _LETTERS.items() for c in chars}
_CONFUSABLE = "".join(_LETTERS.values())
_LOOKALIKE_WORD = re.compile(
    rf"(?<![^\W\d_])[A-Za-z{_CONFUSABLE}]*[{_CONFUSABLE}][A-Za-z{_CONFUSABLE}]*(?![^\W\d_])"
)

_NEWLINES = re.compile(r"\r\n?")
_CONTINUATION = re.compile(r"\\\n")
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_PERCENT_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


def check_input(text: str, *, max_bytes: int, what: str = "prompt") -> None:
    """Raise :class:`WafInputError` for over-size input, control characters (other than
    tab, newline and carriage return) and lone surrogates."""
    if len(text) > max_bytes:
        raise WafInputError(_too_big(what, f"at least {len(text):,}", max_bytes))
    if _REFUSED.search(text) is None:
        if len(text) * 4 > max_bytes and not text.isascii():
            size = len(text.encode("utf-8"))
            if size > max_bytes:
                raise WafInputError(_too_big(what, f"{size:,}", max_bytes))
        return
    bad = _CONTROL.search(text)
    if bad is not None:
        code = ord(bad.group())
        name = _NAMES.get(code, f"control character U+{code:04X}")
        raise WafInputError(
            f"the {what} contains a {name} at offset {bad.start()}; control characters "
            "other than tab and newline are refused"
        )
    surrogate = _SURROGATE.search(text)
    if surrogate is not None:
        raise WafInputError(
            f"the {what} contains invalid Unicode (a lone surrogate) at offset {surrogate.start()}"
        )
    if len(text) * 4 > max_bytes:
        size = len(text.encode("utf-8"))
        if size > max_bytes:
            raise WafInputError(_too_big(what, f"{size:,}", max_bytes))


def _too_big(what: str, size: str, limit: int) -> str:
    return (
        f"the {what} is {size} bytes; the WAF checks at most {limit:,} bytes "
        f"({limit / 1048576:g} MiB), so it is refused"
    )


@dataclass(frozen=True, slots=True)
class _Rewrite:
    """Where the rewritten pieces of one pass sit, in new and old offsets."""

    new_starts: tuple[int, ...]
    new_ends: tuple[int, ...]
    old_starts: tuple[int, ...]
    old_ends: tuple[int, ...]

    def to_old(self, pos: int, *, end: bool) -> int:
        i = bisect_right(self.new_starts, pos) - 1
        if i < 0:
            return pos
        ns, ne = self.new_starts[i], self.new_ends[i]
        if end and ns < pos <= ne:
            return self.old_ends[i]
        if not end and ns <= pos < ne:
            return self.old_starts[i]
        return self.old_ends[i] + (pos - ne)


@dataclass(frozen=True, slots=True)
class Normalized:
    """Normalised text plus the passes that map its offsets back to the original."""

    text: str
    passes: tuple[_Rewrite, ...] = field(default=())

    def to_original(self, span: tuple[int, int]) -> tuple[int, int]:
        start, end = span
        for rewrite in reversed(self.passes):
            start = rewrite.to_old(start, end=False)
            end = rewrite.to_old(end, end=True)
        return (start, max(start, end))


def _rewrite(
    text: str, pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str | None]
) -> tuple[str, _Rewrite | None]:
    pieces: list[str] = []
    new_starts: list[int] = []
    new_ends: list[int] = []
    old_starts: list[int] = []
    old_ends: list[int] = []
    last = 0
    length = 0
    for match in pattern.finditer(text):
        new = repl(match)
        old = match.group()
        if new is None or new == old:
            continue
        start, end = match.span()
        # keep the rewritten piece minimal, so offsets around it stay exact
        head = 0
        while head < min(len(old), len(new)) and old[head] == new[head]:
            head += 1
        tail = 0
        while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
            tail += 1
        start, end, new = start + head, end - tail, new[head : len(new) - tail]
        pieces.append(text[last:start])
        length += start - last
        new_starts.append(length)
        pieces.append(new)
        length += len(new)
        new_ends.append(length)
        old_starts.append(start)
        old_ends.append(end)
        last = end
    if not new_starts:
        return text, None
    pieces.append(text[last:])
    rewrite = _Rewrite(tuple(new_starts), tuple(new_ends), tuple(old_starts), tuple(old_ends))
    return "".join(pieces), rewrite


def fold_unicode(run: str) -> str:
    """Drop invisible characters, apply NFKC, and fold look-alike punctuation and blanks
    (typographic quotes, dashes, slashes, Unicode spaces) to ASCII."""
    folded = unicodedata.normalize("NFKC", _INVISIBLE.sub("", run))
    return _INVISIBLE.sub("", folded).translate(_FOLD_SYMBOLS)


def fold_lookalikes(word: str) -> str:
    """Fold Cyrillic and Greek homoglyphs in a word made only of them and Latin letters."""
    return word.translate(_FOLD_LETTERS)


def _entity(match: re.Match[str]) -> str | None:
    value = html.unescape(match.group())
    return None if _CONTROL.search(value) or "\r" in value else value


def _json_escape(match: re.Match[str]) -> str | None:
    code = int(match.group(1), 16)
    if 0xD800 <= code <= 0xDFFF:
        return None
    value = chr(code)
    return None if _CONTROL.search(value) or value == "\r" else value


def _percent(match: re.Match[str]) -> str | None:
    try:
        value = bytes.fromhex(match.group().replace("%", "")).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if _CONTROL.search(value) or "\r" in value else value


def normalize(text: str, *, markup: bool) -> Normalized:
    """Normalise checked input (see :func:`check_input`).

    Passes, in order: CR and CRLF to LF; with ``markup``, decode HTML entities, JSON
    ``\\uXXXX`` escapes and URL ``%XX`` escapes (when there are two or more) once; drop
    zero-width and bidi characters, NFKC (fullwidth and other compatibility forms), fold
    typographic quotes, dashes, slashes and spaces; fold Cyrillic/Greek homoglyphs in words
    made only of them and Latin letters; remove backslash-newline line continuations.
    """
    passes: list[_Rewrite] = []

    def run(pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str | None]) -> None:
        nonlocal text
        text, rewrite = _rewrite(text, pattern, repl)
        if rewrite is not None:
            passes.append(rewrite)

    if "\r" in text:
        run(_NEWLINES, lambda m: "\n")
    if markup:
        if "&" in text:
            run(_ENTITY, _entity)
        if "\\u" in text:
            run(_JSON_ESCAPE, _json_escape)
        if text.count("%") >= 2:
            run(_PERCENT_RUN, _percent)
    if not text.isascii():
        run(_NON_ASCII_RUN, lambda m: fold_unicode(m.group()))
        run(_LOOKALIKE_WORD, lambda m: fold_lookalikes(m.group()))
    if "\\\n" in text:
        run(_CONTINUATION, lambda m: "")
    return Normalized(text, tuple(passes))
