"""Find the commands in a chat prompt: fenced blocks, inline code and commands in prose.

Markdown code is examined, never skipped. A backtick run opens code that the next run of
the same length closes (CommonMark); a run of three or more at the start of a line with a
line break before its closer is a fenced block whose first word is its language, any other
pair is inline code (Slack-style single-line triple backticks included). An unclosed fence
runs to the end of the prompt.

* A fenced block in a shell language (or none) is parsed as one shell script, with prompt
  markers (``$ ``, ``# ``, ``user@host:~$ ``) removed; in an interpreter language (python,
  javascript, perl, ruby, php, lua, powershell, awk) it is interpreter code; any other
  language is read line by line like prose.
* Inline code that shows a command name or obfuscation is parsed as shell.
* A prose line is parsed (as a sentence: apostrophes are letters, ``#`` starts no comment)
  when it shows a known command name or obfuscation; every known command name in it may
  start a command.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hotplex.waf._text import word_set
from hotplex.waf.context import Anchor

__all__ = ["Candidate", "Document", "scan"]

SHELL_LANGS = word_set(
    "sh bash shell zsh console terminal shellsession shell-session ksh fish dash posix bat cmd "
    "command commands cli"
)
CODE_LANGS = {
    "python": "python",
    "py": "python",
    "python3": "python",
    "py3": "python",
    "ipython": "python",
    "pycon": "python",
    "javascript": "node",
    "js": "node",
    "node": "node",
    "mjs": "node",
    "cjs": "node",
    "ts": "node",
    "typescript": "node",
    "jsx": "node",
    "tsx": "node",
    "perl": "perl",
    "pl": "perl",
    "ruby": "ruby",
    "rb": "ruby",
    "php": "php",
    "lua": "lua",
    "powershell": "pwsh",
    "ps1": "pwsh",
    "pwsh": "pwsh",
    "ps": "pwsh",
    "awk": "awk",
    "r": "r",
}
MAX_SHELL_FENCE = 65536
MAX_LINE = 4096
_TICKS = re.compile(r"`+")
_PROMPT_MARKER = re.compile(
    r"(?m)^[ \t]*(?:\$|#|%|>|\u276f|\u279c|PS [^>\n]{0,80}>"
    r"|[\w.-]{1,64}@[\w.-]{1,64}(?::[^$#\n]{0,200})?[$#])[ \t]+"
)
_DOCKER_RUN = re.compile(r"(?im)^[ \t]*RUN[ \t]+")
_CRON = re.compile(
    r"(?m)^[ \t]*(?:@(?:reboot|yearly|annually|monthly|weekly|daily|midnight|hourly)"
    r"|(?:[\d*][\d*/,\-]*[ \t]+){5})"
)
_LANG = re.compile(r"[\w+#.-]{1,32}")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A piece of the prompt to analyse. ``mode`` is ``shell`` (parse as a script),
    ``prose`` (parse one line as a sentence) or a language (interpreter code)."""

    start: int
    end: int
    mode: str
    anchor: Anchor | None


@dataclass(frozen=True, slots=True)
class _Region:
    kind: str
    start: int
    end: int
    outer_start: int
    outer_end: int
    lang: str


@dataclass(frozen=True, slots=True)
class Document:
    """The normalised prompt, its code regions masked for context reading (``cue``), and
    the candidates to analyse."""

    text: str
    cue: str
    candidates: tuple[Candidate, ...]


def _regions(text: str) -> list[_Region]:
    runs = [(m.start(), m.end()) for m in _TICKS.finditer(text)]
    by_length: dict[int, deque[int]] = {}
    for index, (start, end) in enumerate(runs):
        by_length.setdefault(end - start, deque()).append(index)
    regions: list[_Region] = []
    i = 0
    while i < len(runs):
        start, end = runs[i]
        length = end - start
        same = by_length[length]
        while same and same[0] <= i:
            same.popleft()
        line_start = text.rfind("\n", 0, start) + 1
        fence_like = length >= 3 and not text[line_start:start].strip(" \t")
        if not same:
            if fence_like:
                regions.append(_fence(text, start, end, len(text), len(text)))
                break
            i += 1
            continue
        j = same.popleft()
        close_start, close_end = runs[j]
        if fence_like and "\n" in text[end:close_start]:
            regions.append(_fence(text, start, end, close_start, close_end))
        else:
            lang = ""
            inner_start = end
            if length >= 3:
                m = _LANG.match(text, end)
                if m and text[m.end() : m.end() + 1] == "\n":
                    lang, inner_start = m.group().lower(), m.end() + 1
            regions.append(_Region("inline", inner_start, close_start, start, close_end, lang))
        i = j + 1
    return regions


def _fence(text: str, start: int, end: int, close_start: int, close_end: int) -> _Region:
    newline = text.find("\n", end)
    if newline < 0 or newline > close_start:
        return _Region("fence", end, close_start, start, close_end, "")
    info = text[end:newline].strip()
    lang = info.split()[0].lower().strip("{}.") if info else ""
    return _Region("fence", newline + 1, close_start, start, close_end, lang)


def _mask(text: str, regions: list[_Region], fill: str) -> str:
    pieces: list[str] = []
    last = 0
    for region in regions:
        pieces.append(text[last : region.outer_start])
        chunk = text[region.outer_start : region.outer_end]
        pieces.append(re.sub(r"[^\n]", fill, chunk) if "\n" in chunk else fill * len(chunk))
        last = region.outer_end
    pieces.append(text[last:])
    return "".join(pieces)


def strip_prompt_markers(code: str) -> str:
    """Blank out shell prompt markers at line starts (offsets unchanged)."""
    return _PROMPT_MARKER.sub(lambda m: " " * len(m.group()), code)


def _lines(text: str, start: int, end: int, trigger: Any) -> Iterator[tuple[int, int]]:
    """(start, end) of each line in ``text[start:end]`` that the trigger fires on; over-long
    lines yield a window around each trigger."""
    last_line = -1
    for m in trigger.finditer(text[start:end] if (start, end) != (0, len(text)) else text):
        pos = start + m.start()
        if pos < last_line:
            continue
        line_start = max(start, text.rfind("\n", start, pos) + 1)
        line_end = text.find("\n", pos, end)
        line_end = end if line_end < 0 else line_end
        if line_end - line_start > MAX_LINE:
            line_start = max(line_start, pos - MAX_LINE // 2)
            line_end = min(line_end, pos + MAX_LINE // 2)
        yield line_start, line_end
        last_line = line_end


def scan(text: str, trigger: Any, code_trigger: Any) -> Document:
    """Split a normalised prompt into candidates. The triggers are compiled patterns that
    fire on known command names and obfuscation; ``trigger`` (for prose) wants command
    names that are also English words to look like commands."""
    regions = _regions(text)
    cue = _mask(text, regions, "\x00") if regions else text
    prose = _mask(text, regions, " ") if regions else text
    candidates: list[Candidate] = []
    for region in regions:
        anchor = Anchor(region.outer_start, region.outer_end, region.kind == "fence", region.lang)
        lang = CODE_LANGS.get(region.lang)
        if region.kind == "fence" and lang is not None:
            candidates.append(Candidate(region.start, region.end, lang, anchor))
        elif (
            region.kind == "fence"
            and region.lang not in SHELL_LANGS
            and region.lang not in ("", "dockerfile", "docker", "containerfile")
        ):
            for start, end in _lines(text, region.start, region.end, trigger):
                candidates.append(Candidate(start, end, "prose", anchor))
        elif region.kind == "fence" and region.end - region.start > MAX_SHELL_FENCE:
            for start, end in _lines(text, region.start, region.end, code_trigger):
                candidates.append(Candidate(start, end, "shell", anchor))
        elif region.kind == "fence" or code_trigger.search(text[region.start : region.end]):
            mode = CODE_LANGS.get(region.lang, "shell")
            candidates.append(Candidate(region.start, region.end, mode, anchor))
    for start, end in _lines(prose, 0, len(prose), trigger):
        candidates.append(Candidate(start, end, "prose", None))
    return Document(text, cue, tuple(candidates))


def candidate_source(doc: Document, candidate: Candidate) -> str:
    """The text to analyse for a candidate, offsets preserved relative to its start."""
    chunk = doc.text[candidate.start : candidate.end]
    if candidate.mode in ("shell", "prose"):
        chunk = _CRON.sub(lambda m: " " * len(m.group()), chunk)
    if candidate.mode == "shell":
        chunk = strip_prompt_markers(chunk)
        if candidate.anchor is not None and candidate.anchor.lang in (
            "dockerfile",
            "docker",
            "containerfile",
        ):
            chunk = _DOCKER_RUN.sub(lambda m: " " * len(m.group()), chunk)
    return chunk
