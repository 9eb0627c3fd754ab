"""Static word expansion: what a word becomes when the shell runs it, as far as the text
alone tells.

Variables assigned earlier in the same text resolve (``a=rm; $a``), as do parameter
operations (``${x:-rm}``, ``${x:0:2}``, ``${x//a/b}``, ``${!ref}``, arrays), ``$IFS``
(a blank) and unset positional parameters (empty). Unknown variables stay as ``$NAME``,
except ``$HOME`` (``~``) and ``$PWD`` (``.``). Command substitutions resolve when the
analyzer can evaluate them without running anything (``$(echo rm)``); otherwise they stay
as ``$(...)``. Brace expansion (``{rm,-rf,/}``) and field splitting follow bash.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise

from hotplex.waf.paths import canonical_arg
from hotplex.waf.pure import printf_format
from hotplex.waf.shell import Script, Word, ansi_c, parse_fragment
from hotplex.waf.wrappers import command_name

__all__ = [
    "RUN_LATER_VARS",
    "Env",
    "Hooks",
    "apply_builtin",
    "brace_expand",
    "expand_text",
    "expand_word",
    "in_cwd",
]

Value = str | list[str]
MAX_FIELDS = 512
MAX_BRACE_WORD = 2048
_DEFAULTS = {"HOME": "~", "PWD": ".", "IFS": " "}
_PROTECT = str.maketrans(
    {"{": "\ue001", "}": "\ue002", ",": "\ue003", " ": "\ue004", "\t": "\ue005", "\n": "\ue006"}
)
_PROTECT_BRACES = str.maketrans({"{": "\ue001", "}": "\ue002", ",": "\ue003"})
_RESTORE = str.maketrans(
    {"\ue001": "{", "\ue002": "}", "\ue003": ",", "\ue004": " ", "\ue005": "\t", "\ue006": "\n"}
)
_FIELD_BREAK = "\ue00f"
_SPLIT = re.compile("[ \t\n\ue00f]+")
_PARAM = re.compile(r"([A-Za-z_]\w*|\d+|[@*#?$!-])(?:\[([^\]]*)\])?")
_RANGE = re.compile(r"(-?\d{1,6}|[A-Za-z])\.\.(-?\d{1,6}|[A-Za-z])(?:\.\.(-?\d{1,6}))?")


@dataclass
class Env:
    """Variables known at a point of a script, and positional parameters."""

    vars: dict[str, Value] = field(default_factory=dict)
    positional: list[str] = field(default_factory=list)
    nesting: int = 0  # parameter expansions being expanded (``${a:-${b:-...}}``)

    def copy(self) -> Env:
        return Env(dict(self.vars), list(self.positional))

    def lookup(self, name: str, index: str | None = None) -> Value | None:
        if name.isdigit():
            i = int(name)
            if i == 0:
                return "sh"
            return self.positional[i - 1] if i <= len(self.positional) else ""
        if name in ("@", "*"):
            return list(self.positional)
        special = {"#": str(len(self.positional)), "?": "0", "$": "4242", "!": "", "-": "hB"}
        if name in special:
            return special[name]
        value = self.vars.get(name)
        if value is None:
            value = _DEFAULTS.get(name)
        if value is None or index is None:
            return value
        items = value if isinstance(value, list) else [value]
        if index in ("@", "*"):
            return list(items)
        try:
            i = int(index)
        except ValueError:
            return None
        return items[i] if -len(items) <= i < len(items) else ""


@dataclass(frozen=True)
class Hooks:
    """What expansion asks of the analyzer: the value of a command substitution (None when
    it cannot be known without running it) and a canonical rendering of a script."""

    command_value: Callable[[Script, Env], str | None]
    render: Callable[[Script, Env], str]


def expand_word(word: Word, env: Env, hooks: Hooks) -> list[str]:
    """The fields a word expands to."""
    buf: list[str] = []
    quoted = False
    for part in word.parts:
        if part.kind == "lit":
            quoted |= part.quoted
            buf.append(part.text.translate(_PROTECT) if part.quoted else part.text)
        elif part.kind in ("var", "cmd"):
            value: Value | None
            if part.kind == "var":
                value = _param(part.text, env, hooks)
                raw = f"${part.text}" if _PARAM.fullmatch(part.text) else f"${{{part.text}}}"
            else:
                assert part.script is not None
                value = hooks.command_value(part.script, env)
                if value is not None:
                    value = value.rstrip("\n")
                raw = f"$({hooks.render(part.script, env)})" if part.script else "$()"
            if value is None:
                quoted = True
                buf.append(raw.translate(_PROTECT))
            elif isinstance(value, list):
                table = _PROTECT if part.quoted else _PROTECT_BRACES
                buf.append(_FIELD_BREAK.join(v.translate(table) for v in value))
            else:
                quoted |= part.quoted
                buf.append(value.translate(_PROTECT if part.quoted else _PROTECT_BRACES))
        elif part.kind == "proc":
            inner = hooks.render(part.script, env) if part.script else ""
            quoted = True
            buf.append(f"{part.direction}({inner})".translate(_PROTECT))
        else:
            quoted = True
            buf.append(part.text.translate(_PROTECT))
    text = "".join(buf)
    variants = brace_expand(text) if "{" in text and len(text) <= MAX_BRACE_WORD else [text]
    splitter = _SPLIT
    ifs = env.vars.get("IFS")
    if isinstance(ifs, str) and ifs and ifs not in (" ", " \t\n"):
        chars = ifs + ifs.translate(_PROTECT_BRACES)  # expanded values had , { } protected
        splitter = re.compile("[" + re.escape(chars) + " \t\n\ue00f]+")
    fields: list[str] = []
    for variant in variants:
        pieces = [p for p in splitter.split(variant) if p]
        if not pieces and quoted:
            pieces = [""]
        fields.extend(p.translate(_RESTORE) for p in pieces)
        if len(fields) >= MAX_FIELDS:
            return fields[:MAX_FIELDS]
    return fields


MAX_PARAM_NESTING = 16


def expand_text(text: str, env: Env, hooks: Hooks) -> str:
    """Expand text as if double-quoted (a parameter default, a pattern); past 16 nested
    parameter expansions the text is kept as written."""
    if env.nesting >= MAX_PARAM_NESTING:
        return text
    env.nesting += 1
    try:
        return " ".join(expand_word(parse_fragment(text), env, hooks))
    finally:
        env.nesting -= 1


def _param(expr: str, env: Env, hooks: Hooks) -> Value | None:
    if expr == "#":
        return str(len(env.positional))
    length = expr.startswith("#")
    indirect = expr.startswith("!")
    body = expr[1:] if length or indirect else expr
    m = _PARAM.match(body)
    if m is None:
        return None
    name, index = m.group(1), m.group(2)
    rest = body[m.end() :]
    value = env.lookup(name, index)
    if indirect:
        if isinstance(value, list) or value is None or not _PARAM.fullmatch(value):
            return None
        target = _PARAM.fullmatch(value)
        assert target is not None
        value = env.lookup(target.group(1), target.group(2))
    if length:
        if value is None:
            return None
        return str(len(value))
    return _operate(value, rest, name, env, hooks)


def _operate(value: Value | None, rest: str, name: str, env: Env, hooks: Hooks) -> Value | None:
    if not rest:
        return value
    for op in (":-", ":=", ":+", ":?", "-", "=", "+", "?"):
        if rest.startswith(op):
            word = rest[len(op) :]
            unset = value is None or (op.startswith(":") and value in ("", []))
            if op.endswith(("-", "=")):
                if not unset:
                    return value
                new = expand_text(word, env, hooks)
                if op.endswith("="):
                    env.vars[name] = new
                return new
            if op.endswith("+"):
                return "" if unset else expand_text(word, env, hooks)
            return value
    if value is None:
        return None
    if isinstance(value, list):
        items = [_operate(v, rest, name, env, hooks) for v in value]
        return [v if isinstance(v, str) else "" for v in items]
    return _string_op(value, rest, env, hooks)


def _string_op(value: str, rest: str, env: Env, hooks: Hooks) -> str:
    if rest.startswith(":"):
        bounds = rest[1:].split(":", 1)
        try:
            offset = int(bounds[0].strip() or "0")
            count = int(bounds[1].strip()) if len(bounds) > 1 else None
        except ValueError:
            return value
        if offset < 0:
            offset = max(0, len(value) + offset)
        if count is None:
            return value[offset:]
        end = offset + count if count >= 0 else len(value) + count
        return value[offset:end]
    if rest.startswith("/"):
        spec = rest[1:]
        mode = ""
        if spec[:1] in ("/", "#", "%"):
            mode, spec = spec[0], spec[1:]
        pattern, _, replacement = spec.partition("/")
        return _replace(
            value, expand_text(pattern, env, hooks), expand_text(replacement, env, hooks), mode
        )
    for op in ("##", "#", "%%", "%"):
        if rest.startswith(op):
            return _trim(value, expand_text(rest[len(op) :], env, hooks), op)
    case = {
        "^^": str.upper,
        ",,": str.lower,
        "^": _upper_first,
        ",": _lower_first,
        "@U": str.upper,
        "@L": str.lower,
        "@u": _upper_first,
        "@E": ansi_c,
    }
    for op, fn in case.items():
        if rest.startswith(op):
            return fn(value)
    return value


def _upper_first(s: str) -> str:
    return s[:1].upper() + s[1:]


def _lower_first(s: str) -> str:
    return s[:1].lower() + s[1:]


def _glob(pattern: str) -> re.Pattern[str] | None:
    if len(pattern) > 256:
        return None
    return re.compile(fnmatch.translate(pattern), re.DOTALL)


def _trim(value: str, pattern: str, op: str) -> str:
    value = value[:512]
    glob = _glob(pattern)
    if glob is None:
        return value
    lengths = range(len(value) + 1)
    order = reversed(lengths) if op in ("##", "%%") else lengths
    for n in order:
        if op.startswith("#") and glob.match(value[:n]):
            return value[n:]
        if op.startswith("%") and glob.match(value[len(value) - n :]):
            return value[: len(value) - n]
    return value


def _replace(value: str, pattern: str, replacement: str, mode: str) -> str:
    if not pattern:
        return value
    if not any(c in pattern for c in "*?["):
        if mode == "#":
            return replacement + value[len(pattern) :] if value.startswith(pattern) else value
        if mode == "%":
            return value[: -len(pattern)] + replacement if value.endswith(pattern) else value
        count = -1 if mode == "/" else 1
        return value.replace(pattern, replacement, count)
    glob = _glob(pattern)
    if glob is None:
        return value
    body = glob.pattern.removeprefix("(?s:").removesuffix(")\\Z")
    try:
        inner = re.compile(body, re.DOTALL)
    except re.error:
        return value
    return inner.sub(lambda m: replacement, value[:512], count=0 if mode == "/" else 1)


def brace_expand(text: str, limit: int = MAX_FIELDS) -> list[str]:
    """Bash brace expansion (``a{b,c}d``, ``{1..3}``), at most ``limit`` results."""
    out: list[str] = []
    stack = [text]
    while stack and len(out) < limit:
        current = stack.pop()
        found = _first_brace(current)
        if found is None:
            out.append(current)
            continue
        prefix, options, suffix = found
        stack.extend(prefix + option + suffix for option in reversed(options[:limit]))
    return out


def _first_brace(text: str) -> tuple[str, list[str], str] | None:
    start = text.find("{")
    tries = 0
    while start >= 0 and tries < 64:
        tries += 1
        depth, commas, i = 0, [], start
        close = -1
        while i < len(text):
            c = text[i]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    close = i
                    break
            elif c == "," and depth == 1:
                commas.append(i)
            i += 1
        if close < 0:
            return None
        inner = text[start + 1 : close]
        if commas:
            bounds = [start, *commas, close]
            options = [text[a + 1 : b] for a, b in pairwise(bounds)]
            return text[:start], options, text[close + 1 :]
        rng = _RANGE.fullmatch(inner)
        if rng is not None:
            return text[:start], _range(*rng.groups()), text[close + 1 :]
        start = text.find("{", start + 1)
    return None


def _range(a: str, b: str, step: str | None) -> list[str]:
    inc = abs(int(step)) if step else 1
    inc = inc or 1
    if a.lstrip("-").isdigit() and b.lstrip("-").isdigit():
        x, y = int(a), int(b)
        seq = range(x, y + 1, inc) if x <= y else range(x, y - 1, -inc)
        return [str(v) for v in seq[:MAX_FIELDS]]
    if a.isalpha() and b.isalpha():
        x, y = ord(a), ord(b)
        seq = range(x, y + 1, inc) if x <= y else range(x, y - 1, -inc)
        return [chr(v) for v in seq[:MAX_FIELDS]]
    return [f"{a}..{b}"]


_ASSIGNMENT = re.compile(r"([A-Za-z_]\w*)(\[[^\]]*\])?(\+?)=")
_WORD = re.compile(r"\w+")
# variables whose value the shell runs later
RUN_LATER_VARS = frozenset({"PROMPT_COMMAND", "PS1", "PS4", "BASH_ENV", "ENV"})
# a working directory worth remembering: the root, a home, a system directory
_SENSITIVE_CWD = re.compile(
    r"/|~(?:/.*)?|/(?:bin|boot|dev|etc|lib\w*|opt|proc|root|sbin|srv|sys|usr|var|home|Users)"
    r"(?:/.*)?"
)


def apply_builtin(argv: list[str], env: Env, stdin: str | None) -> list[str]:
    """Apply a builtin's effect on variables (``export``/``declare``, ``read`` from a
    here-string, ``set --``, ``unset``, a ``for`` loop's values, ``cd`` to a sensitive
    directory); returns shell strings it stores for later (``PROMPT_COMMAND=...``)."""
    name = command_name(argv[0])
    args = argv[1:]
    later: list[str] = []
    if name in ("export", "declare", "typeset", "local", "readonly"):
        for arg in args:
            m = _ASSIGNMENT.match(arg)
            if m and not m.group(2):
                value = arg[m.end() :]
                if value.startswith("(") and value.endswith(")"):
                    env.vars[m.group(1)] = value[1:-1].split()
                else:
                    env.vars[m.group(1)] = value
                if m.group(1) in RUN_LATER_VARS:
                    later.append(value)
    elif name == "read" and stdin is not None:
        names = [a for a in args if not a.startswith("-") and _WORD.fullmatch(a)]
        values = stdin.rstrip("\n").split()
        if "-a" in args and names:
            env.vars[names[-1]] = values
        for k, var in enumerate(names if "-a" not in args else ()):
            last = k == len(names) - 1
            env.vars[var] = " ".join(values[k:]) if last else (values[k] if k < len(values) else "")
    elif name == "printf" and len(args) >= 3 and args[0] == "-v":
        env.vars[args[1]] = printf_format(args[2], args[3:])
    elif name == "set" and "--" in args:
        env.positional = args[args.index("--") + 1 :]
    elif name == "unset":
        for arg in args:
            env.vars.pop(arg, None)
    elif name in ("for", "select") and len(args) >= 2 and args[1] == "in":
        env.vars[args[0]] = args[2:]
    elif name in ("cd", "pushd", "chdir"):
        target = next((a for a in args if not a.startswith("-")), "~")
        old = env.vars.get("@cwd")
        if not target.startswith(("/", "~")) and isinstance(old, str):
            target = old.rstrip("/") + "/" + target
        target = canonical_arg(target) if target.startswith(("/", "~")) else ""
        if target and _SENSITIVE_CWD.fullmatch(target):
            env.vars["@cwd"] = target
        else:
            env.vars.pop("@cwd", None)
    return later


def in_cwd(arg: str, env: Env) -> str:
    """A relative path after ``cd /`` (or home, or a system directory), made absolute."""
    cwd = env.vars.get("@cwd")
    if not isinstance(cwd, str) or not arg or arg[0] in "-/~$" or "://" in arg or "=" in arg:
        return arg
    return cwd.rstrip("/") + "/" + arg
