"""Find the commands in a chat prompt: fenced blocks, inline code and commands in prose.

Markdown code is examined, never skipped. A backtick run opens code that the next run of
the same length closes (CommonMark); a run of three or more at the start of a line with a
line break before its closer is a fenced block whose first word is its language, any other
pair is inline code (Slack-style single-line triple backticks included). An unclosed fence
runs to the end of the prompt.

* A fenced block in a shell language (or none), and inline code, is shell: the lines where
  the code trigger fires (a known command name in command position, or obfuscation) are
  parsed, each extended while a quote, bracket, here-document or continuation stays open,
  in order and sharing variables, with prompt markers (``$ ``, ``# ``, ``user@host:~$ ``)
  and cron schedules removed. A block in an interpreter language (python, javascript,
  perl, ruby, php, lua, powershell, awk) is interpreter code; any other language is read
  line by line like prose.
* A prose sentence is parsed (apostrophes are letters, ``#`` starts no comment) when the
  prose trigger fires: a command name used like one (followed by a flag, path, file name,
  quote or pipe within three words, or preceded by ``run``/``use``/a colon, or opening a
  line) or obfuscation. Every known command name in the sentence may start a command.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from hotplex.waf._text import word_set
from hotplex.waf.context import Anchor
from hotplex.waf.quotes import quoted_commands

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
MAX_LINE = 4096
_SENTENCE_END = re.compile(r"[.!?](?=\s)")
_PROMPT_MARKER = re.compile(
    r"(?m)^[ \t]*(?:\$|#|%|>(?![ \t]+[\"']?[~/$][^\s]*[ \t]*$)|\u276f|\u279c|PS [^>\n]{0,80}>"
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
    """A piece of the prompt to analyse. ``mode`` is ``shell`` (parse as a script: the
    ``chunks`` that show a command name or obfuscation, in order, sharing variables),
    ``prose`` (parse one line as a sentence) or a language (interpreter code)."""

    start: int
    end: int
    mode: str
    anchor: Anchor | None
    chunks: tuple[tuple[int, int], ...] = ()  # shell: the parts worth parsing (relative)


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
    runs: list[tuple[int, int]] = []
    n = len(text)
    i = text.find("`")
    while i >= 0:
        j = i + 1
        while j < n and text[j] == "`":
            j += 1
        runs.append((i, j))
        i = text.find("`", j)
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


def _keep(text: str, regions: list[_Region]) -> str:
    """The text with everything but ``regions`` (backticks included) blanked."""
    pieces: list[str] = []
    last = 0
    for region in regions:
        pieces.append(" " * (region.outer_start - last))
        pieces.append(text[region.outer_start : region.outer_end])
        last = region.outer_end
    pieces.append(" " * (len(text) - last))
    return "".join(pieces)


def _positions(trigger: Any, text: str) -> list[int]:
    """Offsets inside each trigger match (matching bytes is faster when the text is ASCII)."""
    subject: str | bytes = text.encode("ascii") if text.isascii() else text
    return [_inside(m) for m in trigger.finditer(subject)]


def _mask(text: str, regions: list[_Region], fill: str) -> str:
    """The text with every code region (backticks included) replaced by ``fill``; offsets
    do not change, and a fenced block becomes a single line."""
    pieces: list[str] = []
    last = 0
    for region in regions:
        pieces.append(text[last : region.outer_start])
        pieces.append(fill * (region.outer_end - region.outer_start))
        last = region.outer_end
    pieces.append(text[last:])
    return "".join(pieces)


def strip_prompt_markers(code: str) -> str:
    """Blank out shell prompt markers at line starts (offsets unchanged)."""
    return _PROMPT_MARKER.sub(lambda m: " " * len(m.group()), code)


def _inside(match: Any) -> int:
    """An offset inside a trigger match (a command-name match starts with the character
    before the name, which may be the previous line's newline)."""
    return int(match.start()) + (1 if match.end() - match.start() > 1 else 0)


def _lines(
    text: str, start: int, end: int, trigger: Any, *, sentences: bool = False
) -> Iterator[tuple[int, int]]:
    """(start, end) of each line in ``text[start:end]`` that the trigger fires on; with
    ``sentences`` (prose), or in an over-long line, of the sentence around the trigger."""
    covered = -1
    for offset in _positions(trigger, text[start:end] if (start, end) != (0, len(text)) else text):
        pos = start + offset
        if pos < covered:
            continue
        line_start = max(start, text.rfind("\n", start, pos) + 1)
        line_end = text.find("\n", pos, end)
        line_end = end if line_end < 0 else line_end
        if sentences or line_end - line_start > MAX_LINE:
            low = max(line_start, pos - MAX_LINE // 2)
            before = text[low:pos]
            cut = max(before.rfind(". "), before.rfind("? "), before.rfind("! "))
            line_start = low + cut + 2 if cut >= 0 else low
            high = min(line_end, pos + MAX_LINE // 2)
            stop = _SENTENCE_END.search(text, pos, high)
            line_end = stop.end() if stop else high
        yield line_start, line_end
        covered = line_end


_SPECIAL = re.compile(r"[\\'\"`#(){}<]")
_HEREDOC = re.compile(r"<<-?[ \t]*(['\"]?)([\w.-]+)\1")
_CONTINUED = ("\\", "|", "&&", "||", "(", "{")


def _scan_line(line: str, state: tuple[str, int, str]) -> tuple[str, int, str]:
    """Shell state after a line: (open quote, bracket depth, pending here-doc delimiter)."""
    quote, depth, heredoc = state
    if heredoc:
        return (quote, depth, "" if line.strip() == heredoc else heredoc)
    i, n = 0, len(line)
    while i < n:
        if quote == "'":
            j = line.find("'", i)
            if j < 0:
                return (quote, depth, heredoc)
            quote, i = "", j + 1
            continue
        m = _SPECIAL.search(line, i)
        if m is None:
            break
        i, c = m.start(), m.group()
        if c == "\\":
            i += 2
            continue
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"`":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t;"):
            break
        elif c in "({":
            depth += 1
        elif c in ")}":
            depth = max(0, depth - 1)
        elif c == "<" and line.startswith("<<", i) and not line.startswith("<<<", i):
            here = _HEREDOC.match(line, i)
            if here:
                heredoc, i = here.group(2), here.end()
                continue
        i += 1
    return (quote, depth, heredoc)


def shell_chunks(body: str, positions: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """The lines of shell code holding the trigger ``positions``, each extended while it
    leaves a quote, bracket, here-document or continuation open (at most 400 lines)."""
    chunks: list[tuple[int, int]] = []
    covered = -1
    for pos in positions:
        if pos < covered:
            continue
        start = line_start = body.rfind("\n", 0, pos) + 1
        if chunks and start <= chunks[-1][1] + 1:
            start = chunks.pop()[0]
        state = ("", 0, "")
        end = line_start
        for _ in range(400):
            line_end = body.find("\n", line_start)
            end = len(body) if line_end < 0 else line_end
            state = _scan_line(body[line_start:end], state)
            open_ = any(state) or body[line_start:end].rstrip().endswith(_CONTINUED)
            if not open_ or end >= len(body):
                break
            line_start = end + 1
        chunks.append((start, end))
        covered = end
    return tuple(chunks)


def scan(text: str, trigger: Any, code_trigger: Any) -> Document:
    """Split a normalised prompt into candidates. The triggers are compiled patterns that
    fire on known command names and obfuscation; ``trigger`` (for prose) wants command
    names that are also English words to look like commands."""
    regions = _regions(text)
    cue = _mask(text, regions, "\x00") if regions else text
    prose = _mask(text, regions, " ") if regions else text
    shell = [
        r
        for r in regions
        if r.kind == "inline"
        or r.lang in SHELL_LANGS
        or r.lang in ("", "dockerfile", "docker", "containerfile")
    ]
    hits = _positions(code_trigger, _keep(text, shell)) if shell else []
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
        else:
            inside = hits[bisect_left(hits, region.outer_start) : bisect_left(hits, region.end)]
            body = text[region.start : region.end]
            chunks = shell_chunks(body, (max(0, p - region.start) for p in inside))
            if chunks:
                candidates.append(Candidate(region.start, region.end, "shell", anchor, chunks))
    candidates.extend(_quoted(prose, code_trigger))
    for start, end in _lines(prose, 0, len(prose), trigger, sentences=True):
        candidates.append(Candidate(start, end, "prose", None))
    return Document(text, cue, tuple(candidates))


def _quoted(prose: str, code_trigger: Any) -> Iterator[Candidate]:
    """Quoted commands in prose (:mod:`.quotes`), each examined like inline code."""
    for outer_start, outer_end in quoted_commands(prose, code_trigger):
        start, end = outer_start + 1, outer_end - 1
        chunks = shell_chunks(prose[start:end], (0,))
        yield Candidate(start, end, "shell", Anchor(outer_start, outer_end), chunks)


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
