"""The canonical views that rules match, and how words are written in them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hotplex.waf._text import word_set
from hotplex.waf.paths import canonical_arg
from hotplex.waf.wrappers import SHELLS, WRAPPERS, command_name

__all__ = [
    "BASE_VERBS",
    "COMMON_WORDS",
    "DOWNLOADERS",
    "RESERVED",
    "Analysis",
    "Line",
    "ScriptView",
    "View",
    "download_target",
    "file_key",
    "name_of",
    "render_word",
]

RESERVED = word_set("then do else elif if while until ! { } fi done esac in")
BASE_VERBS = (
    SHELLS
    | (frozenset(WRAPPERS) - RESERVED)
    | word_set(
        "python python2 python3 pypy pypy3 node nodejs deno bun perl ruby php lua luajit awk "
        "gawk mawk nawk pwsh powershell eval exec source env command busybox xargs find trap "
        "alias ssh su runuser sg script flock watch tmux screen docker podman kubectl crontab "
        "at base64 xxd openssl gunzip zcat rev printf echo cd declare export typeset local "
        "readonly read set unset"
    )
)
# English words that are also command names: in prose they must look like a command
COMMON_WORDS = word_set(
    "at find cat kill time watch nice script command source yes make install set read test true "
    "format touch sort head tail less more man type open mail host dig fetch expect last which "
    "who print write wall echo env exec eval export local declare alias trap tr rev batch sg su "
    "screen http https links do go run build apply start stop get use copy shutdown reboot halt "
    "poweroff init function mount printf kill pv fold cut paste od scrub node deno bun parallel "
    "unshare chroot nohup xargs pkill lynx iwr irm http security vault mv cp ln dd timeout "
    "chronic flock cd local read unset readonly command builtin coproc script "
    "ash bat cipher del erase fish git grep history nano nl posh rd ri service strings tac tar "
    "tee unlink zip truncate vim sed diskpart"
)
_NEEDS_QUOTES = re.compile(r"[\s;&|<>()'\"]")
_ESCAPE_SYNTAX = re.compile(r"[<>|&]")
DOWNLOADERS = frozenset({"curl", "wget", "fetch", "aria2c", "http", "https", "lwp-download"})


@dataclass(frozen=True, slots=True)
class View:
    """One canonical command and the span of source it came from."""

    text: str
    span: tuple[int, int]
    origin: str


@dataclass(frozen=True, slots=True)
class ScriptView:
    """Canonical commands one per line, and the source span of each line."""

    text: str
    spans: tuple[tuple[int, int], ...]


@dataclass
class Analysis:
    commands: list[View] = field(default_factory=list)
    scripts: list[ScriptView] = field(default_factory=list)


Line = tuple[str, str, tuple[int, int]]


def render_word(word: str) -> str:
    """A word as it appears in a view: in double quotes when it holds blanks or shell
    punctuation, with ``< > | &`` inside it backslash-escaped, so that an unescaped one in a
    view is always shell syntax (a redirection or a pipe), never quoted data."""
    word = word.replace("\n", " ").replace("\t", " ")
    if not word:
        return '""'
    if not _NEEDS_QUOTES.search(word):
        return word
    lead = word[:2] if word.startswith(("<(", ">(", "$(")) else ""
    escaped = _ESCAPE_SYNTAX.sub(_backslash, word[len(lead) :])
    return f'"{lead}{escaped}"'


def _backslash(match: re.Match[str]) -> str:
    return "\\" + match.group()


def name_of(word: str) -> str:
    if word.startswith(("$(", "<(", ">(")):
        return render_word(word)
    return command_name(word)


def file_key(path: str) -> str:
    key = canonical_arg(path)
    return key[2:] if key.startswith("./") else key


def download_target(name: str, args: list[str]) -> str | None:
    urls = [a for a in args if "://" in a]
    remote = urls[0].rstrip("/").rsplit("/", 1)[-1].split("?")[0] if urls else None
    flag = "o" if name == "curl" else "O"
    for i, arg in enumerate(args):
        value = args[i + 1] if i + 1 < len(args) else None
        if arg in ("--output", "--output-document"):
            return value
        if arg.startswith(("--output=", "--output-document=")):
            return arg.split("=", 1)[1]
        if arg.startswith("-") and not arg.startswith("--"):
            body = arg[1:]
            if flag in body:
                glued = body[body.index(flag) + 1 :]
                target = glued or value
                return None if target == "-" else target
            if name == "curl" and "O" in body:
                return remote
    if name == "wget":
        return remote
    return None
