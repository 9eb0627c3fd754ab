"""Wrappers: commands that run their arguments as a command.

:func:`unwrap` removes them (``sudo``, ``env``, ``nohup``, ``timeout 5``, ``busybox``,
``command`` but not ``command -v``, ``xargs``, shell reserved words such as ``then``) with
their options, and collects the shell strings that string-taking wrappers run (``su -c``,
``watch``, ``flock -c``). What the unwrapped command starts is :mod:`.runs`' business.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from hotplex.waf._text import word_set

__all__ = ["SHELLS", "WRAPPERS", "Unwrapped", "command_name", "skip_options", "unwrap"]

_ASSIGN = re.compile(r"[A-Za-z_]\w*=")
SHELLS = word_set("sh bash zsh dash ksh mksh ash fish rbash csh tcsh yash posh busybox-sh")


@dataclass(frozen=True, slots=True)
class _Spec:
    values: str = ""  # short options that take a value
    longs: frozenset[str] = frozenset()  # long options that take a separate value
    positional: int = 0  # arguments to skip after the options (timeout's duration)


_NONE = _Spec()
WRAPPERS: dict[str, _Spec] = {
    "sudo": _Spec(
        "ugpChDrRtTU",
        frozenset(
            {
                "--user",
                "--group",
                "--prompt",
                "--chdir",
                "--role",
                "--type",
                "--host",
                "--other-user",
                "--close-from",
                "--command-timeout",
            }
        ),
    ),
    "doas": _Spec("uC"),
    "pkexec": _Spec("", frozenset({"--user"})),
    "builtin": _NONE,
    "exec": _Spec("a"),
    "nohup": _NONE,
    "time": _Spec("fo"),
    "nice": _Spec("n"),
    "ionice": _Spec("cnpP"),
    "timeout": _Spec("sk", positional=1),
    "stdbuf": _Spec("ioe"),
    "setsid": _NONE,
    "chrt": _Spec("T", positional=1),
    "taskset": _Spec("", positional=1),
    "unbuffer": _NONE,
    "chronic": _NONE,
    "caffeinate": _Spec("wt"),
    "proxychains": _Spec("f"),
    "proxychains4": _Spec("f"),
    "torsocks": _Spec("uapP"),
    "tsocks": _NONE,
    "faketime": _Spec("f", positional=1),
    "strace": _Spec("oeEpPsSuIabX"),
    "ltrace": _Spec("oeEpuSsaDnl"),
    "fakeroot": _Spec("is"),
    "firejail": _NONE,
    "systemd-run": _Spec("pEMHu", frozenset({"--unit", "--property", "--uid", "--gid"})),
    "dbus-launch": _NONE,
    "ssh-agent": _NONE,
    "catchsegv": _NONE,
    "noglob": _NONE,
    "nocorrect": _NONE,
    "coproc": _NONE,
    "then": _NONE,
    "do": _NONE,
    "else": _NONE,
    "elif": _NONE,
    "if": _NONE,
    "while": _NONE,
    "until": _NONE,
    "!": _NONE,
    "{": _NONE,
    "}": _NONE,
    "xargs": _Spec(
        "nILPdsEa", frozenset({"--max-args", "--replace", "--max-procs", "--delimiter"})
    ),
    "chroot": _Spec("", frozenset({"--userspec", "--groups"}), positional=1),
    "nsenter": _Spec("tSGmuinpUCrwT"),
    "unshare": _Spec("SGwR"),
}


@functools.lru_cache(maxsize=4096)
def command_name(word: str) -> str:
    """The name a command is known by: the last path element, lower-cased."""
    name = word.rsplit("/", 1)[-1] if "/" in word.rstrip("/") else word
    return name.lower()


@dataclass(frozen=True, slots=True)
class Unwrapped:
    """``argv`` runs; ``stages`` are the command lines from each wrapper on (``sudo -E
    nohup rm x``, ``nohup rm x``); ``scripts`` are shell strings a wrapper runs."""

    argv: tuple[str, ...]
    wrappers: tuple[str, ...] = ()
    scripts: tuple[str, ...] = ()
    stages: tuple[tuple[str, ...], ...] = ()


def skip_options(argv: list[str], i: int, spec: _Spec) -> int:
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return i + 1
        if arg.startswith("--"):
            i += 2 if "=" not in arg and arg in spec.longs else 1
            continue
        if arg.startswith("-") and len(arg) > 1:
            for k, ch in enumerate(arg[1:]):
                if ch in spec.values:
                    if k == len(arg) - 2:
                        i += 1
                    break
            i += 1
            continue
        break
    return min(i + spec.positional, len(argv))


def unwrap(argv: list[str]) -> Unwrapped:
    """Strip wrappers; ``argv`` empty in the result means nothing runs (``command -v``,
    ``sudo -i`` opening a shell), and ``scripts`` holds shell source a wrapper runs."""
    wrappers: list[str] = []
    scripts: list[str] = []
    stages: list[tuple[str, ...]] = []

    def done(rest: list[str] | tuple[str, ...]) -> Unwrapped:
        return Unwrapped(tuple(rest), tuple(wrappers), tuple(scripts), tuple(stages))

    for _ in range(16):
        if not argv:
            break
        name = command_name(argv[0])
        if name in WRAPPERS or name in (
            "env",
            "command",
            "busybox",
            "su",
            "runuser",
            "sg",
            "script",
            "flock",
            "watch",
        ):
            stages.append(tuple(argv))
        if name == "env":
            argv = _strip_env(argv)
            wrappers.append(name)
            continue
        if name == "command":
            if any(a.startswith("-") and ("v" in a or "V" in a) for a in argv[1:2]):
                wrappers.append(name)
                return done(())
            argv = argv[skip_options(argv, 1, _NONE) :]
            wrappers.append(name)
            continue
        if name == "busybox" and len(argv) > 1:
            argv = argv[1:]
            wrappers.append(name)
            continue
        if name in ("su", "runuser", "sg", "script", "flock", "watch"):
            inner, string = _string_wrapper(name, argv)
            wrappers.append(name)
            if string is not None:
                scripts.append(string)
            if inner is None:
                return done(())
            argv = inner
            continue
        spec = WRAPPERS.get(name)
        if spec is None:
            break
        wrappers.append(name)
        argv = argv[skip_options(argv, 1, spec) :]
    return done(argv)


def _strip_env(argv: list[str]) -> list[str]:
    i = 1
    split: list[str] | None = None
    while i < len(argv):
        arg = argv[i]
        if arg in ("-u", "-C", "--unset", "--chdir"):
            i += 2
        elif arg in ("-S", "--split-string"):
            split = argv[i + 1].split() if i + 1 < len(argv) else []
            i += 2
            break
        elif arg.startswith(("-S", "--split-string=")):
            split = (arg.split("=", 1)[1] if arg.startswith("--") else arg[2:]).split()
            i += 1
            break
        elif arg.startswith("-") or _ASSIGN.match(arg):
            i += 1
        else:
            break
    return [*(split or []), *argv[i:]]


def _string_wrapper(name: str, argv: list[str]) -> tuple[list[str] | None, str | None]:
    """(argv it runs, shell source it runs) for wrappers that take a command string."""
    args = argv[1:]
    if name == "watch":
        i = skip_options(argv, 1, _Spec("n"))
        return None, " ".join(argv[i:]) or None
    for i, arg in enumerate(args):
        if arg in ("-c", "--command", "--session-command") and i + 1 < len(args):
            return None, args[i + 1]
        if arg.startswith("--command="):
            return None, arg.split("=", 1)[1]
        if (
            arg.startswith("-")
            and not arg.startswith("--")
            and arg.endswith("c")
            and (name in ("script", "su") and i + 1 < len(args))
        ):
            return None, args[i + 1]
    if name == "runuser" and "--" in args:
        return args[args.index("--") + 1 :], None
    if name == "sg" and len(args) >= 2:
        return None, " ".join(args[1:])
    if name == "flock":
        plain = [a for a in args if not a.startswith("-")]
        return (plain[1:] or None), None
    return None, None
