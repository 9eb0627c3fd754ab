"""What a command starts besides itself.

:func:`runs` reads a command's arguments and says what else it runs: shell source (``sh
-c``, ``eval``, ``ssh host CMD``, ``trap``, ``alias``, ``git -c core.pager=``, ``tar
--checkpoint-action=exec=``), argument vectors (``find -exec``, ``xargs``, ``docker exec``,
``parallel``), interpreter code (``python -c``, ``perl -e``, ``node -e``, ``awk``,
``powershell -EncodedCommand``), its standard input (``sh`` or ``python -`` reading a
pipe, ``crontab -``) or a script file.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from hotplex.waf.wrappers import SHELLS, WRAPPERS, command_name, skip_options

__all__ = ["INTERPRETERS", "Runs", "interpreter", "runs"]

INTERPRETERS = (
    (re.compile(r"(?:python|pypy)[\d.]*"), "python"),
    (re.compile(r"node(?:js)?|bun|deno"), "node"),
    (re.compile(r"perl[\d.]*"), "perl"),
    (re.compile(r"ruby[\d.]*|irb"), "ruby"),
    (re.compile(r"php[\d.]*"), "php"),
    (re.compile(r"lua(?:jit)?[\d.]*"), "lua"),
    (re.compile(r"pwsh|powershell(?:\.exe)?"), "pwsh"),
    (re.compile(r"g?awk|mawk|nawk"), "awk"),
    (re.compile(r"rscript"), "r"),
)
_CODE_FLAGS = {
    "python": "c",
    "node": "ep",
    "perl": "eE",
    "ruby": "e",
    "php": "r",
    "lua": "e",
    "r": "e",
}
_VALUE_FLAGS = {
    "python": "WXQ",
    "perl": "IM",
    "ruby": "rIECFK",
    "php": "cdzf",
    "lua": "l",
    "node": "r",
    "r": "",
}


@functools.lru_cache(maxsize=1024)
def interpreter(name: str) -> str | None:
    """The language of an interpreter command name (``python3.11`` -> ``python``)."""
    for pattern, lang in INTERPRETERS:
        if pattern.fullmatch(name):
            return lang
    return None


@dataclass(frozen=True, slots=True)
class Runs:
    """What an unwrapped command starts besides itself."""

    scripts: tuple[str, ...] = ()
    argvs: tuple[tuple[str, ...], ...] = ()
    code: tuple[tuple[str, str], ...] = ()
    stdin: str | None = None  # "shell" or a language: it executes its standard input
    file: str | None = None  # a script file it executes
    file_lang: str = "shell"
    positional: tuple[str, ...] = ()
    xargs: bool = False


def runs(argv: tuple[str, ...]) -> Runs:
    if not argv:
        return Runs()
    name = command_name(argv[0])
    args = list(argv[1:])
    if name in SHELLS:
        return _shell(args)
    lang = interpreter(name)
    if lang is not None:
        return _interpreter(lang, args)
    handler = _HANDLERS.get(name)
    return handler(args) if handler else Runs()


def _shell(args: list[str]) -> Runs:
    i = 0
    stdin = False
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if arg == "-":
            return Runs(stdin="shell")
        if arg.startswith("-") and not arg.startswith("--") and "c" in arg[1:]:
            code = args[i + 1] if i + 1 < len(args) else ""
            return Runs(scripts=(code,), positional=tuple(args[i + 3 :]))
        if arg in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            i += 2
            continue
        if arg.startswith(("-", "+")):
            stdin |= arg.startswith("-") and "s" in arg[1:] and not arg.startswith("--")
            i += 1
            continue
        break
    if stdin or i >= len(args):
        return Runs(stdin="shell")
    return Runs(file=args[i], positional=tuple(args[i + 1 :]))


def _interpreter(lang: str, args: list[str]) -> Runs:
    if lang == "awk":
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                i += 1
                break
            if arg in ("-f", "--file"):
                return Runs(file=args[i + 1] if i + 1 < len(args) else None, file_lang="awk")
            if arg in ("-F", "-v", "--assign", "--field-separator"):
                i += 2
                continue
            if arg.startswith("-"):
                i += 1
                continue
            break
        return Runs(code=(("awk", args[i]),)) if i < len(args) else Runs()
    if lang == "pwsh":
        return _powershell(args)
    if lang == "node" and args[:1] == ["eval"] and len(args) > 1:
        return Runs(code=((lang, args[1]),))
    flags, values = _CODE_FLAGS[lang], _VALUE_FLAGS[lang]
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--eval", "--print", "--command") and i + 1 < len(args):
            return Runs(code=((lang, args[i + 1]),))
        if arg.startswith("--"):
            i += 1
            continue
        if arg == "-":
            return Runs(stdin=lang)
        if arg.startswith("-") and len(arg) > 1:
            body = arg[1:]
            for k, ch in enumerate(body):
                if ch in flags:
                    rest = body[k + 1 :]
                    if rest and lang in ("perl", "ruby"):
                        return Runs(code=((lang, rest),))
                    code = args[i + 1] if i + 1 < len(args) else ""
                    return Runs(code=((lang, code),))
                if lang == "python" and ch == "m":
                    return Runs()
                if ch in values:
                    i += 0 if body[k + 1 :] else 1
                    break
            i += 1
            continue
        return Runs(file=arg, file_lang=lang)
    return Runs(stdin=lang)


def _powershell(args: list[str]) -> Runs:
    for i, arg in enumerate(args):
        low = arg.lower()
        value = args[i + 1] if i + 1 < len(args) else ""
        if low in ("-c", "-command"):
            return Runs(code=(("pwsh", " ".join(args[i + 1 :])),))
        if low in ("-e", "-ec", "-enc", "-encodedcommand"):
            try:
                decoded = base64.b64decode(value + "=" * (-len(value) % 4)).decode("utf-16-le")
            except (binascii.Error, ValueError, UnicodeDecodeError):
                decoded = value
            return Runs(code=(("pwsh", decoded),))
    return Runs(stdin="pwsh")


def _eval(args: list[str]) -> Runs:
    return Runs(scripts=(" ".join(args),)) if args else Runs()


def _source(args: list[str]) -> Runs:
    if not args:
        return Runs()
    if args[0] in ("/dev/stdin", "-", "/proc/self/fd/0"):
        return Runs(stdin="shell")
    return Runs(file=args[0], positional=tuple(args[1:]))


def _find(args: list[str]) -> Runs:
    found: list[tuple[str, ...]] = []
    i = 0
    while i < len(args):
        if args[i] in ("-exec", "-execdir", "-ok", "-okdir"):
            j = i + 1
            while j < len(args) and args[j] not in (";", "+"):
                j += 1
            found.append(tuple(args[i + 1 : j]))
            i = j
        i += 1
    return Runs(argvs=tuple(a for a in found if a))


def _xargs(args: list[str]) -> Runs:
    i = skip_options(["xargs", *args], 1, WRAPPERS["xargs"]) - 1
    inner = tuple(args[i:]) or ("echo",)
    return Runs(argvs=(inner,), xargs=True)


def _trap(args: list[str]) -> Runs:
    return Runs(scripts=(args[0],)) if args and args[0] not in ("-l", "-p") else Runs()


def _alias(args: list[str]) -> Runs:
    return Runs(scripts=tuple(a.split("=", 1)[1] for a in args if "=" in a))


_GIT_EXEC_KEYS = re.compile(
    r"(?i)(?:core\.(?:pager|sshcommand|editor|fsmonitor)|sequence\.editor|diff\.external"
    r"|credential\.helper|alias\.[\w.-]+)=(.*)",
    re.S,
)


def _git(args: list[str]) -> Runs:
    scripts = []
    for i, arg in enumerate(args[:-1]):
        if arg == "-c":
            m = _GIT_EXEC_KEYS.fullmatch(args[i + 1])
            if m:
                value = m.group(1)
                scripts.append(value[1:] if value.startswith("!") else value)
    return Runs(scripts=tuple(scripts))


def _option_commands(
    prefixes: tuple[str, ...], flags: tuple[str, ...]
) -> Callable[[list[str]], Runs]:
    def handler(args: list[str]) -> Runs:
        scripts = []
        for i, arg in enumerate(args):
            for prefix in prefixes:
                if arg.startswith(prefix) and len(arg) > len(prefix):
                    scripts.append(arg[len(prefix) :])
            if arg in flags and i + 1 < len(args):
                scripts.append(args[i + 1])
        return Runs(scripts=tuple(scripts))

    return handler


_SSH_VALUES = "bcDEeFIiJLlmOopQRSWwB"


def _ssh(args: list[str]) -> Runs:
    scripts: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-o") or (arg == "-o" and i + 1 < len(args)):
            option = arg[2:] or (args[i + 1] if i + 1 < len(args) else "")
            m = re.match(r"(?i)(?:proxycommand|localcommand|remotecommand)[ =](.*)", option)
            if m:
                scripts.append(m.group(1))
            i += 1 if arg[2:] else 2
            continue
        if arg.startswith("-") and len(arg) > 1:
            i += 2 if arg[-1] in _SSH_VALUES and len(arg) == 2 else 1
            continue
        remote = args[i + 1 :]
        if remote:
            scripts.append(" ".join(remote))
        break
    return Runs(scripts=tuple(scripts))


def _container_exec(args: list[str]) -> Runs:
    if not args or args[0] not in ("exec", "debug"):
        return Runs()
    if "--" in args:
        return Runs(argvs=(tuple(args[args.index("--") + 1 :]),))
    values = {
        "-e",
        "--env",
        "-u",
        "--user",
        "-w",
        "--workdir",
        "--env-file",
        "-c",
        "--container",
        "-n",
        "--namespace",
        "--detach-keys",
    }
    i = 1
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in values else 1
    return Runs(argvs=(tuple(args[i + 1 :]),)) if i + 1 < len(args) else Runs()


def _vim(args: list[str]) -> Runs:
    scripts = []
    for i, arg in enumerate(args):
        command = (
            args[i + 1]
            if arg == "-c" and i + 1 < len(args)
            else arg[1:]
            if (arg.startswith("+"))
            else None
        )
        if command:
            command = command.lstrip(":")
            if command.startswith("!"):
                scripts.append(command[1:])
    return Runs(scripts=tuple(scripts))


def _stdin_shell(args: list[str]) -> Runs:
    return Runs(stdin="shell")


def _crontab(args: list[str]) -> Runs:
    if any(a in ("-l", "-r", "-e", "-i") for a in args):
        return Runs()
    files = [a for a in args if not a.startswith("-") or a == "-"]
    if not files or files == ["-"]:
        return Runs(stdin="crontab")
    return Runs(file=files[0], file_lang="crontab")


def _tmux(args: list[str]) -> Runs:
    if args and args[0] in ("send-keys", "send"):
        keys = [a for a in args[1:] if not a.startswith("-") and a not in ("Enter", "C-m")]
        return Runs(scripts=(" ".join(keys[1:] if "-t" in args else keys),))
    if args and args[0] in ("new-session", "new", "new-window", "neww", "split-window"):
        plain = [a for a in args[1:] if not a.startswith("-")]
        return Runs(scripts=(plain[-1],)) if plain else Runs()
    return Runs()


def _parallel(args: list[str]) -> Runs:
    cut = args.index(":::") if ":::" in args else len(args)
    inner = [a for a in args[:cut] if not a.startswith("-")]
    return Runs(argvs=(tuple(inner),)) if inner else Runs()


def _screen(args: list[str]) -> Runs:
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in ("-S", "-c", "-t", "-L") or args[i].endswith("S") else 1
    return Runs(argvs=(tuple(args[i:]),)) if i < len(args) else Runs()


_HANDLERS = {
    "eval": _eval,
    "source": _source,
    ".": _source,
    "find": _find,
    "xargs": _xargs,
    "trap": _trap,
    "alias": _alias,
    "git": _git,
    "tar": _option_commands(
        (
            "--checkpoint-action=exec=",
            "--to-command=",
            "--use-compress-program=",
            "--info-script=",
            "--new-volume-script=",
        ),
        ("-I", "-F"),
    ),
    "rsync": _option_commands(("--rsh=", "--rsync-path="), ("-e", "--rsh", "--rsync-path")),
    "zip": _option_commands(("--unzip-command=",), ("-TT", "--unzip-command")),
    "ssh": _ssh,
    "docker": _container_exec,
    "podman": _container_exec,
    "kubectl": _container_exec,
    "oc": _container_exec,
    "vim": _vim,
    "vi": _vim,
    "nvim": _vim,
    "ex": _vim,
    "at": _stdin_shell,
    "batch": _stdin_shell,
    "crontab": _crontab,
    "tmux": _tmux,
    "parallel": _parallel,
    "screen": _screen,
}
