"""Evasion variants of corpus rows (reliability.md section 3.2, techniques E1-E17).

Each transform takes a shell command and returns a variant that a shell (or, for the
Unicode and markup tricks, a reader) would still take as the same command, or None when the
technique does not apply. Commands embedded in prompts (inline code or a fenced block) are
transformed in place; E15-E17 transform the whole prompt.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["TRANSFORMS", "Variant", "variants"]

_FIRST_WORD = re.compile(r"^(?P<lead>\s*)(?P<word>(?:/[\w.+-]+)*[A-Za-z][\w.+-]*)(?=\s|$|[;|&<>])")
_PLAIN = re.compile(r"[\w./~:@=,+*-]+(?: [\w./~:@=,+*-]+)*")
_CODE = re.compile(r"```(?P<lang>[^\n`]*)\n(?P<fence>.*?)\n```|`(?P<inline>[^`\n]+)`", re.S)
_CODE_LANGS = {
    "python",
    "py",
    "javascript",
    "js",
    "node",
    "perl",
    "ruby",
    "php",
    "lua",
    "powershell",
    "ps1",
    "awk",
}
_CONFUSABLE = {
    "a": "\u0430",
    "c": "\u0441",
    "e": "\u0435",
    "o": "\u043e",
    "p": "\u0440",
    "x": "\u0445",
    "y": "\u0443",
    "s": "\u0455",
    "i": "\u0456",
    "m": "\u043c",
    "r": "\u0433",
    "t": "\u0442",
    "k": "\u043a",
}


def _first(cmd: str, new: Callable[[str], str]) -> str | None:
    m = _FIRST_WORD.match(cmd)
    if m is None or "=" in m.group("word"):
        return None
    return cmd[: m.start("word")] + new(m.group("word")) + cmd[m.end("word") :]


def _name(word: str) -> tuple[str, str]:
    head, _, name = word.rpartition("/")
    return (head + "/" if head or word.startswith("/") else ""), name


def e1_quotes(cmd: str) -> str | None:
    return _first(cmd, lambda w: (lambda h, n: f"{h}{n[0]}''{n[1:]}")(*_name(w)))


def e1_double(cmd: str) -> str | None:
    return _first(cmd, lambda w: (lambda h, n: f'{h}"{n[:1]}"{n[1:]}')(*_name(w)))


def e2_backslash(cmd: str) -> str | None:
    return _first(cmd, lambda w: (lambda h, n: f"{h}{n[0]}\\{n[1:]}")(*_name(w)))


def e2_continuation(cmd: str) -> str | None:
    m = _FIRST_WORD.match(cmd)
    if m is None or " " not in cmd[m.end() :]:
        return None
    return cmd[: m.end()] + " \\\n" + cmd[m.end() :].lstrip(" ")


def e3_ifs(cmd: str) -> str | None:
    return cmd.replace(" ", "${IFS}") if _PLAIN.fullmatch(cmd) and " " in cmd else None


def e4_braces(cmd: str) -> str | None:
    if not _PLAIN.fullmatch(cmd) or " " not in cmd or any(c in cmd for c in ",{}*"):
        return None
    return "{" + cmd.replace(" ", ",") + "}"


def e5_variable(cmd: str) -> str | None:
    m = _FIRST_WORD.match(cmd)
    if m is None:
        return None
    return f"x={m.group('word')}; " + cmd[: m.start("word")] + "$x" + cmd[m.end("word") :]


def e6_substitution(cmd: str) -> str | None:
    return _first(cmd, lambda w: f"$(echo {w})")


def e6_printf(cmd: str) -> str | None:
    return _first(cmd, lambda w: f"$(printf %s {w})")


def e7_base64(cmd: str) -> str | None:
    return f"echo {base64.b64encode(cmd.encode()).decode()} | base64 -d | bash"


def e7_eval(cmd: str) -> str | None:
    return f'eval "$(echo {base64.b64encode(cmd.encode()).decode()} | base64 --decode)"'


def e7_hex(cmd: str) -> str | None:
    return f"echo {cmd.encode().hex()} | xxd -r -p | sh"


def e7_ansi_c(cmd: str) -> str | None:
    return _first(cmd, lambda w: "$'" + "".join(f"\\x{ord(c):02x}" for c in w) + "'")


def e7_rev(cmd: str) -> str | None:
    return f"rev <<< {shlex.quote(cmd[::-1])} | sh" if "\n" not in cmd else None


def e9_wrappers(cmd: str) -> str | None:
    return _first(cmd, lambda w: f"sudo -E env LANG=C nohup timeout 30 {w}")


def e9_path(cmd: str) -> str | None:
    return _first(cmd, lambda w: w if w.startswith("/") else f"/usr/bin/env {w}")


def e10_flags(cmd: str) -> str | None:
    for old, new in (
        (" -rf ", " -r -f "),
        (" -fr ", " --force --recursive "),
        (" -Rf ", " -f -R "),
    ):
        if old in f" {cmd} ":
            return f" {cmd} ".replace(old, new, 1).strip()
    return None


def e11_python(cmd: str) -> str | None:
    return "python3 -c " + shlex.quote(f"import os; os.system({json.dumps(cmd)})")


def e11_perl(cmd: str) -> str | None:
    return "perl -e " + shlex.quote(f"system({json.dumps(cmd)})")


def e12_heredoc(cmd: str) -> str | None:
    return f"bash <<'EOF'\n{cmd}\nEOF"


def e12_herestring(cmd: str) -> str | None:
    return f"sh <<< {shlex.quote(cmd)}"


def e13_glob(cmd: str) -> str | None:
    m = _FIRST_WORD.match(cmd)
    if m is None or len(_name(m.group("word"))[1]) < 2:
        return None
    return _first(cmd, lambda w: (lambda h, n: f"{h}{n[:-1]}[{n[-1]}]")(*_name(w)))


def e14_chain(cmd: str) -> str | None:
    return f"echo starting; true && {cmd}"


def e15_fullwidth(text: str) -> str | None:
    return _first(
        text, lambda w: "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in w)
    )


def e15_zero_width(text: str) -> str | None:
    return _first(
        text,
        lambda w: (
            w[:1] + "\u200b" + w[1:-1] + "\u2060" + w[-1:]
            if len(w) > 2
            else w[:1] + "\u200d" + w[1:]
        ),
    )


def e15_homoglyph(text: str) -> str | None:
    def swap(word: str) -> str:
        for i, c in enumerate(word):
            if c in _CONFUSABLE:
                return word[:i] + _CONFUSABLE[c] + word[i + 1 :]
        return word

    return _first(text, swap)


def e15_bidi_nbsp(text: str) -> str | None:
    m = _FIRST_WORD.match(text)
    if m is None:
        return None
    word = m.group("word")
    return (
        text[: m.start("word")]
        + "\u202e\u202c"
        + word
        + text[m.end("word") :].replace(" ", "\u00a0", 1)
    )


def e16_carriage_return(text: str) -> str | None:
    return f"echo done\r{text}"


def e16_nul(text: str) -> str | None:
    return f"{text}\x00"


def e17_entities(text: str) -> str | None:
    return text.replace("/", "&#x2F;").replace(" ", "&#32;") if "/" in text else None


def e17_json(text: str) -> str | None:
    return _first(text, lambda w: "".join(f"\\u{ord(c):04x}" for c in w))


def e17_url(text: str) -> str | None:
    return text.replace(" ", "%20") if text.count(" ") >= 2 else None


@dataclass(frozen=True)
class Transform:
    technique: str
    fn: Callable[[str], str | None]
    scope: str  # "command": shell syntax; "text": any text; "prompt": prompts only
    refused: bool = False  # the WAF refuses the variant (WafInputError) rather than parses it


TRANSFORMS: tuple[Transform, ...] = (
    Transform("E1", e1_quotes, "command"),
    Transform("E1", e1_double, "command"),
    Transform("E2", e2_backslash, "command"),
    Transform("E2", e2_continuation, "command"),
    Transform("E3", e3_ifs, "command"),
    Transform("E4", e4_braces, "command"),
    Transform("E5", e5_variable, "command"),
    Transform("E6", e6_substitution, "command"),
    Transform("E6", e6_printf, "command"),
    Transform("E7", e7_base64, "command"),
    Transform("E7", e7_eval, "command"),
    Transform("E7", e7_hex, "command"),
    Transform("E7", e7_ansi_c, "command"),
    Transform("E7", e7_rev, "command"),
    Transform("E9", e9_wrappers, "command"),
    Transform("E9", e9_path, "command"),
    Transform("E10", e10_flags, "command"),
    Transform("E11", e11_python, "command"),
    Transform("E11", e11_perl, "command"),
    Transform("E12", e12_heredoc, "command"),
    Transform("E12", e12_herestring, "command"),
    Transform("E13", e13_glob, "command"),
    Transform("E14", e14_chain, "command"),
    Transform("E15", e15_fullwidth, "text"),
    Transform("E15", e15_zero_width, "text"),
    Transform("E15", e15_homoglyph, "text"),
    Transform("E15", e15_bidi_nbsp, "text"),
    Transform("E16", e16_carriage_return, "command"),
    Transform("E16", e16_nul, "text", refused=True),
    Transform("E17", e17_entities, "prompt"),
    Transform("E17", e17_json, "prompt"),
    Transform("E17", e17_url, "prompt"),
)


@dataclass(frozen=True)
class Variant:
    id: str
    technique: str
    kind: str
    text: str
    refused: bool


def _embedded(text: str) -> tuple[int, int] | None:
    """The span of the first shell code block or inline code of a prompt (None when the
    prompt has none, or its code is in another language)."""
    m = _CODE.search(text)
    if m is None or (m.group("lang") or "").strip().lower() in _CODE_LANGS:
        return None
    group = "fence" if m.group("fence") is not None else "inline"
    start, end = m.span(group)
    marker = re.match(r"[$#] ", text[start:end])  # a shell prompt is not part of the command
    return (start + marker.end() if marker else start), end


def variants(row: dict[str, Any]) -> Iterator[Variant]:
    """Every applicable evasion variant of a corpus row."""
    text, kind = row["text"], row["kind"]
    code = (0, len(text)) if kind == "command" else _embedded(text)
    for n, transform in enumerate(TRANSFORMS):
        if transform.scope == "prompt" and kind != "prompt":
            continue
        if code is None and transform.scope == "command":
            continue
        start, end = code if code is not None else (0, len(text))
        inline = kind == "prompt" and "\n" not in text[start:end] and text[start - 1 : start] == "`"
        new = transform.fn(text[start:end])
        if new is None or new == text[start:end] or (inline and ("\n" in new or "`" in new)):
            continue
        yield Variant(
            f"{row['id']}:{transform.technique}.{n}",
            transform.technique,
            kind,
            text[:start] + new + text[end:],
            transform.refused,
        )
