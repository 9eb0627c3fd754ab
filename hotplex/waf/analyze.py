"""Walk parsed shell and produce the canonical views that rules are matched against.

A *command view* is one simple command as it would run: wrappers stripped, words expanded
(quotes and escapes removed, variables and pure substitutions resolved), the command name
reduced to its lower-cased basename, arguments canonicalised (see :mod:`paths`), words
holding blanks or shell punctuation written in double quotes, and redirections appended as
``[fd]op target``. A *script view* holds one command view per line, each line starting
with the connector that led to it (``;``, ``|``, ``&&``, ``||``, ``&``), so rules can see
pipelines (``curl ... | sh``) and sequences (``mkfifo ...; nc ...``).

Everything a command would execute is analysed too, up to a depth of 8: command and
process substitutions, ``sh -c`` and other strings run as shell, argument vectors run by
``find -exec`` or ``xargs``, interpreter code, a shell's standard input when the text
producing it can be evaluated (``echo ... | base64 -d | sh``), and scripts written or
downloaded earlier in the same text and then run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from hotplex.waf._re2 import compile_pattern
from hotplex.waf.code import scan_code
from hotplex.waf.expand import RUN_LATER_VARS, Env, Hooks, apply_builtin, expand_word, in_cwd
from hotplex.waf.later import Later
from hotplex.waf.normalize import normalize
from hotplex.waf.paths import canonical_arg
from hotplex.waf.pure import Stage, evaluate
from hotplex.waf.shell import FuncDef, Group, Part, Pipeline, Redirect, Script, Simple, Word
from hotplex.waf.shell import parse as parse_shell
from hotplex.waf.views import (
    BASE_VERBS,
    COMMON_WORDS,
    RESERVED,
    Analysis,
    Line,
    ScriptView,
    View,
    name_of,
    render_word,
)
from hotplex.waf.wrappers import command_name, unwrap

__all__ = [
    "BASE_VERBS",
    "COMMON_WORDS",
    "Analysis",
    "Analyzer",
    "ScriptView",
    "View",
    "render_word",
]

MAX_DEPTH = 8
MAX_NESTED = 256
MAX_ARGV = 4096
MAX_DECODED = 1 << 20
# a script of plain words only: a command name without "=" or glob characters, arguments
# without quotes, expansions, braces, operators or redirections
_PLAIN_SCRIPT = compile_pattern(
    r"(?:[ \t]*(?:[A-Za-z0-9_./:@%+,~-]+(?:[ \t]+[A-Za-z0-9_./:@%+=,~*?-]+)*)?[ \t]*\n)*"
    r"[ \t]*(?:[A-Za-z0-9_./:@%+,~-]+(?:[ \t]+[A-Za-z0-9_./:@%+=,~*?-]+)*)?[ \t]*"
)
_WORDS = re.compile(r"\S+")
_PLAIN_ARG = re.compile(r"[A-Za-z0-9_,:@%+=-][\w.,:@%+=-]*")  # nothing to canonicalise
_ASSIGN = re.compile(r"([A-Za-z_]\w*)(\[[^\]]*\])?(\+?)=")
_LANG_VIEW = {
    "python": "python -c",
    "node": "node -e",
    "perl": "perl -e",
    "ruby": "ruby -e",
    "php": "php -r",
    "lua": "lua -e",
    "pwsh": "pwsh -c",
    "awk": "awk",
    "r": "rscript -e",
}
_CRON_FIELD = re.compile(r"[\d*][\d*/,-]*")
_CRON_NICKNAMES = frozenset(
    {"@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)


@dataclass(frozen=True, slots=True)
class _Result:
    view: str
    stage: Stage | None


def _trim(word: str) -> str:
    trimmed = word.rstrip(",;:.!?)")
    return trimmed if trimmed and trimmed not in (".", "..") else word


class Analyzer:
    """Collects the views of one text. ``prose`` parses the top level as a sentence and
    also tries each known command name inside it as the start of a command."""

    def __init__(self, *, verbs: frozenset[str] = frozenset(), prose: bool = False) -> None:
        self.known = BASE_VERBS | verbs
        self.prose = prose
        self.result = Analysis()
        self._later = Later(self)
        self._nested = 0
        self._decoded = 0
        # memo of substitutions by id(); the script is kept so that its id is not reused
        self._subs: dict[int, tuple[Script, str | None, str]] = {}
        self._too_deep = False
        self._hook_cache: dict[tuple[int, tuple[int, int] | None], Hooks] = {}
        self._functions: dict[str, Script] = {}

    # -- entry points -----------------------------------------------------------------

    def source(
        self,
        src: str,
        *,
        base: int = 0,
        depth: int = 0,
        span: tuple[int, int] | None = None,
        env: Env | None = None,
    ) -> None:
        """Analyse shell source. Offsets are ``base`` + offsets into ``src``; ``span``
        replaces them when the source is not text of the input (a decoded payload)."""
        if depth > MAX_DEPTH or self._nested > MAX_NESTED:
            self._limit(span or (base, base + len(src)))
            return
        if depth:
            self._nested += 1
            if not src.isascii():
                src = normalize(src, markup=False).text
        if len(src) < 65536 and _PLAIN_SCRIPT.fullmatch(src) is not None:
            self._plain(src, base, env if env is not None else Env(), depth, span)
            return
        script = parse_shell(src, prose=self.prose and depth == 0, base=base)
        if script.too_deep:
            self._limit(span or (base, base + len(src)))
        self._script(script, env if env is not None else Env(), depth, span)

    def code(
        self, lang: str, code: str, *, depth: int, span: tuple[int, int], synthetic: bool = True
    ) -> None:
        """Analyse interpreter code: its view, the shell it runs, the code it evaluates."""
        if depth > MAX_DEPTH or self._nested > MAX_NESTED:
            self._limit(span)
            return
        self._nested += 1
        if synthetic:
            self._add(f"{_LANG_VIEW.get(lang, lang)} {render_word(code)}", span, "interpreter")
        found = scan_code(lang, code)
        for command in found.shell:
            self.source(command, depth=depth + 1, span=span)
        for nested in found.code:
            self.code(lang, nested, depth=depth + 1, span=span)

    def _plain(
        self, src: str, base: int, env: Env, depth: int, span: tuple[int, int] | None
    ) -> None:
        """Lines of plain words (no quoting, expansion, operators or redirections) need no
        parser: each line is one simple command."""
        lines: list[Line] = []
        offset = 0
        prose = self.prose and depth == 0
        for line in src.split("\n"):
            words = [(m.group(), m.start()) for m in _WORDS.finditer(line)]
            if words:
                argv = [w for w, _ in words]
                starts = [base + offset + at for _, at in words]
                where = span or (starts[0], base + offset + len(line.rstrip()))
                if prose:
                    for arg in argv:  # a sentence may assign a variable anywhere
                        m = _ASSIGN.match(arg)
                        if m and not m.group(2):
                            env.vars[m.group(1)] = arg[m.end() :]
                result = self._command(argv, starts, [], [], None, env, depth, where, None)
                lines.append((";", result.view, where))
            offset += len(line) + 1
        if lines:
            text = "\n".join(f"; {v}" for _, v, _ in lines)
            self.result.scripts.append(ScriptView(text, tuple(w for _, _, w in lines)))

    # -- structure --------------------------------------------------------------------

    def _add(self, text: str, span: tuple[int, int], origin: str) -> None:
        self.result.commands.append(View(text, span, origin))

    def _limit(self, span: tuple[int, int]) -> None:
        if not self._too_deep:
            self._too_deep = True
            self._add("@too-deep", span, "synthetic")

    def _script(
        self,
        script: Script,
        env: Env,
        depth: int,
        span: tuple[int, int] | None,
        *,
        record: bool = True,
    ) -> list[Line]:
        lines: list[Line] = []
        for connector, pipeline in script.items:
            found = self._pipeline(pipeline, env, depth, span)
            if found:
                found[0] = (connector, found[0][1], found[0][2])
                lines.extend(found)
        if record and lines:
            text = "\n".join(f"{c} {v}" for c, v, _ in lines)
            self.result.scripts.append(ScriptView(text, tuple(s for _, _, s in lines)))
        return lines

    def _pipeline(
        self, pipeline: Pipeline, env: Env, depth: int, span: tuple[int, int] | None
    ) -> list[Line]:
        lines: list[Line] = []
        stages: list[Stage] | None = []
        for i, command in enumerate(pipeline.commands):
            connector = "|" if i else ";"
            where = span or (command.start, command.end)
            if isinstance(command, Simple):
                result = self._simple(command, env, depth, span, stages)
                lines.append((connector, result.view, where))
                stages = None if stages is None or result.stage is None else [*stages, result.stage]
            elif isinstance(command, Group):
                inner = env.copy() if command.subshell else env
                found = self._script(command.body, inner, depth, span, record=False)
                if found:
                    found[0] = (connector, found[0][1], found[0][2])
                    lines.extend(found)
                if command.redirects:
                    rendered, _, _ = self._redirects(command.redirects, env, depth, span)
                    lines.append(("|" if found else connector, " ".join(rendered), where))
                stages = None
            else:
                lines.append((connector, self._function(command, env, depth, span), where))
                stages = None
        return lines

    def _function(self, func: FuncDef, env: Env, depth: int, span: tuple[int, int] | None) -> str:
        self._functions[func.name] = func.body
        body = self._script(func.body, env.copy(), depth, span, record=False)
        name = func.name.lower()
        parts: list[str] = []
        for connector, view, _ in body:
            head, _, tail = view.partition(" ")
            shown = f"@self {tail}".rstrip() if head == name else view
            parts.append(shown if not parts else f"{connector} {shown}")
        items = func.body.items
        if items and items[-1][1].background:
            parts.append("&")
        text = f"function {render_word(func.name)} {{ {' '.join(parts)} }}"
        self._add(text, span or (func.start, func.end), "function")
        return text

    # -- simple commands ----------------------------------------------------------------

    def _hooks(self, depth: int, span: tuple[int, int] | None) -> Hooks:
        hooks = self._hook_cache.get((depth, span))
        if hooks is None:
            hooks = self._hook_cache[(depth, span)] = Hooks(
                command_value=lambda script, env: self._substitution(script, env, depth, span)[0],
                render=lambda script, env: self._substitution(script, env, depth, span)[1],
            )
        return hooks

    def _expand(self, word: Word, env: Env, depth: int, span: tuple[int, int] | None) -> list[str]:
        parts = word.parts
        if word.array is None and len(parts) == 1 and parts[0].kind == "lit":
            text = parts[0].text
            if not parts[0].quoted and "{" not in text:
                return [text]
        if word.array is not None:
            name = word.parts[0].text if word.parts else ""
            items = [f for w in word.array for f in self._expand(w, env, depth, span)]
            return [f"{name}({' '.join(items)})"]
        return expand_word(word, env, self._hooks(depth, span))

    def _substitution(
        self, script: Script, env: Env, depth: int, span: tuple[int, int] | None
    ) -> tuple[str | None, str]:
        """(value if it can be evaluated, canonical one-line rendering), memoised."""
        key = id(script)
        cached = self._subs.get(key)
        if cached is not None:
            return cached[1], cached[2]
        self._subs[key] = (script, None, "...")
        if depth >= MAX_DEPTH:
            self._limit(span or (0, 0))
            return None, "..."
        lines = self._script(script, env.copy(), depth + 1, span)
        rendered = " ".join(v if not i else f"{c} {v}" for i, (c, v, _) in enumerate(lines))
        value: str | None = None
        if len(script.items) == 1 and all(
            isinstance(c, Simple) for c in script.items[0][1].commands
        ):
            stages = []
            for command in script.items[0][1].commands:
                assert isinstance(command, Simple)
                argv = [f for w in command.words for f in self._expand(w, env, depth + 1, span)]
                _, stdin, _ = self._redirects(command.redirects, env, depth + 1, span)
                stages.append(Stage(tuple(unwrap(argv).argv), stdin))
            value = self._evaluate(stages)
        self._subs[key] = (script, value, rendered)
        return value, rendered

    def _evaluate(self, stages: list[Stage]) -> str | None:
        if self._decoded > MAX_DECODED:
            return None
        out = evaluate(stages)
        if out is None:
            return None
        self._decoded += len(out)
        return out.decode("utf-8", "replace")

    def _assignment(
        self, word: Word, env: Env, depth: int, span: tuple[int, int] | None
    ) -> tuple[str, str | list[str]] | None:
        first = word.parts[0] if word.parts else None
        if first is None or first.kind != "lit" or first.quoted:
            return None
        m = _ASSIGN.match(first.text)
        if m is None:
            return None
        name = m.group(1)
        value: str | list[str]
        if word.array is not None:
            value = [f for w in word.array for f in self._expand(w, env, depth, span)]
        else:
            parts = [Part("lit", first.text[m.end() :], quoted=True)]
            parts += [Part(p.kind, p.text, True, p.script, p.direction) for p in word.parts[1:]]
            value = " ".join(self._expand(Word(parts, word.start, word.end), env, depth, span))
        old = env.vars.get(name)
        if m.group(3) and old is not None:
            value = (
                ([*old] if isinstance(old, list) else [old])
                + (value if isinstance(value, list) else [value])
                if isinstance(old, list) or isinstance(value, list)
                else old + value
            )
        return name, value

    def _redirects(
        self, redirects: list[Redirect], env: Env, depth: int, span: tuple[int, int] | None
    ) -> tuple[list[str], str | None, list[str]]:
        rendered: list[str] = []
        stdin: str | None = None
        writes: list[str] = []
        for r in redirects:
            target = " ".join(self._expand(r.target, env, depth, span)) if r.target else ""
            if r.op in ("<<", "<<-"):
                stdin = r.heredoc or ""
                rendered.append(f"{r.fd}<< {render_word(r.delimiter)}")
            elif r.op == "<<<":
                stdin = target + "\n"
                rendered.append(f"{r.fd}<<< {render_word(target)}")
            else:
                rendered.append(f"{r.fd}{r.op} {render_word(canonical_arg(target))}")
                if r.op in (">", ">>", ">|", "&>", "&>>") and r.fd in ("", "1"):
                    writes.append(target)
        return rendered, stdin, writes

    def _simple(
        self,
        cmd: Simple,
        env: Env,
        depth: int,
        span: tuple[int, int] | None,
        upstream: list[Stage] | None,
    ) -> _Result:
        where = span or (cmd.start, cmd.end)
        words = cmd.words
        assigns: list[tuple[str, str | list[str]]] = []
        i = 0
        while i < len(words):
            assign = self._assignment(words[i], env, depth, span)
            if assign is None:
                break
            assigns.append(assign)
            i += 1
        argv: list[str] = []
        starts: list[int] = []
        for word in words[i:]:
            if self.prose and depth == 0:
                assign = self._assignment(word, env, depth, span)
                if assign is not None:
                    env.vars[assign[0]] = assign[1]
            fields = self._expand(word, env, depth, span)
            argv.extend(fields)
            starts.extend([word.start] * len(fields))
            if len(argv) > MAX_ARGV:
                break
        rendered, stdin, writes = self._redirects(cmd.redirects, env, depth, span)
        if not argv:
            for name, value in assigns:
                env.vars[name] = value
                if name in RUN_LATER_VARS and isinstance(value, str):
                    self.source(value, depth=depth + 1, span=where)
            shown = [f"{n}={' '.join(v) if isinstance(v, list) else v}" for n, v in assigns]
            text = " ".join([render_word(s) for s in shown] + rendered)
            if text:
                self._add(text, where, "assignment")
            return _Result(text, None)
        return self._command(argv, starts, rendered, writes, stdin, env, depth, where, upstream)

    def _command(
        self,
        argv: list[str],
        starts: list[int],
        rendered: list[str],
        writes: list[str],
        stdin: str | None,
        env: Env,
        depth: int,
        where: tuple[int, int],
        upstream: list[Stage] | None,
    ) -> _Result:
        """An expanded simple command: cron schedules dropped, and in prose the command
        found inside the sentence."""
        if (
            len(argv) > 5
            and all(_CRON_FIELD.fullmatch(a) for a in argv[:5])
            and any("*" in a for a in argv[:5])
        ):
            argv, starts = argv[5:], starts[5:]
        elif len(argv) > 1 and argv[0] in _CRON_NICKNAMES:
            argv, starts = argv[1:], starts[1:]
        if not (self.prose and depth == 0):
            return self._emit(argv, rendered, writes, stdin, env, depth, where, upstream, "direct")
        if any("/" in a or "~" in a for a in argv):
            # a sentence that names a path: rules may look at it whole (a request in words)
            self._add(
                "@prose " + " ".join(render_word(canonical_arg(a)) for a in argv), where, "prose"
            )
        # each known command name may start the command; the one that leads the piped part
        # is the first word when it is one, else the last one that is not also an English
        # word (trailing punctuation is not part of a command name in a sentence)
        argv = [_trim(a) if command_name(_trim(a)) in self.known else a for a in argv]
        restarts = [
            j
            for j in range(1, len(argv))
            if command_name(argv[j]) in self.known and command_name(argv[j]) not in RESERVED
        ]
        if command_name(argv[0]) in self.known:
            # "Kill every process: kill -9 -1", "Format the stick using mkfs.ext4 /dev/sdc1":
            # the sentence's verb is a command name, and so is the command it names
            for j in restarts:
                self._emit(
                    argv[j:], rendered, [], None, env, 0, (starts[j], where[1]), None, "prose"
                )
            return self._emit(argv, rendered, writes, stdin, env, depth, where, upstream, "prose")
        if not restarts:
            return self._emit(argv, rendered, writes, stdin, env, depth, where, upstream, "direct")
        strong = [k for k in restarts if command_name(argv[k]) not in COMMON_WORDS]
        chosen = strong[-1] if strong else restarts[-1]
        for j in restarts:
            if j != chosen:
                self._emit(
                    argv[j:], rendered, [], None, env, 0, (starts[j], where[1]), None, "prose"
                )
        return self._emit(
            argv[chosen:],
            rendered,
            writes,
            stdin,
            env,
            depth,
            (starts[chosen], where[1]),
            upstream,
            "prose",
        )

    def _emit(
        self,
        argv: list[str],
        rendered: list[str],
        writes: list[str],
        stdin: str | None,
        env: Env,
        depth: int,
        where: tuple[int, int],
        upstream: list[Stage] | None,
        origin: str,
    ) -> _Result:
        argv = self._resolve_glob(argv, rendered, env, where)
        unwrapped = unwrap(argv)
        inner = list(unwrapped.argv)
        for wrapped in unwrapped.stages:
            self._add(self._view(list(wrapped), rendered, env), where, "wrapped")
        for script in unwrapped.scripts:
            self.source(script, depth=depth + 1, span=where, env=env.copy())
        if "xargs" in unwrapped.wrappers and upstream:
            piped = self._evaluate(upstream)
            if piped:
                inner += piped.split()[:64]
        if not inner:
            last = list(unwrapped.stages[-1]) if unwrapped.stages else argv
            view = self._view(last, rendered, env)
            if not unwrapped.stages:
                self._add(view, where, origin)
            return _Result(view, None)
        if unwrapped.wrappers:
            inner = self._resolve_glob(inner, rendered, env, where)
        for later in apply_builtin(inner, env, stdin):
            self.source(later, depth=depth + 1, span=where)
        view = self._view(inner, rendered, env)
        self._add(view, where, origin)
        name = name_of(inner[0])
        body = self._functions.get(inner[0])
        if body is not None and depth < MAX_DEPTH:
            # a call of a function defined earlier: its body with these arguments
            self._script(body, Env(dict(env.vars), inner[1:]), depth + 1, where)
        self._later.follow(inner, name, stdin, env, depth, where, upstream)
        stage = Stage(tuple(inner), stdin)
        self._later.track(inner, name, writes, stage, upstream, view, where, depth)
        return _Result(view, stage)

    def _view(self, argv: list[str], rendered: list[str], env: Env) -> str:
        cwd = "@cwd" in env.vars
        args = [
            a if _PLAIN_ARG.fullmatch(a) and not cwd else render_word(canonical_arg(in_cwd(a, env)))
            for a in argv[1:]
        ]
        return " ".join([name_of(argv[0]), *args, *rendered])

    def _resolve_glob(
        self, argv: list[str], rendered: list[str], env: Env, where: tuple[int, int]
    ) -> list[str]:
        """A command name written as a glob (``/???/r?``, ``/bin/r[m]``) becomes the known
        command it matches (views are added for up to seven other matches)."""
        name = command_name(argv[0])
        if (
            not any(c in name for c in "*?[")
            or not name.strip("*?[]")
            or argv[0].startswith(("$(", "<(", '"'))
        ):
            return argv
        matches = [v for v in sorted(self.known) if fnmatchcase(v, name)]
        for other in matches[1:8]:
            self._add(self._view([other, *argv[1:]], rendered, env), where, "glob")
        return [matches[0], *argv[1:]] if matches else argv
