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
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from hotplex.waf._text import word_set
from hotplex.waf.code import scan_code
from hotplex.waf.expand import Env, Hooks, expand_word
from hotplex.waf.paths import canonical_arg
from hotplex.waf.pure import Stage, evaluate
from hotplex.waf.shell import FuncDef, Group, Part, Pipeline, Redirect, Script, Simple, Word
from hotplex.waf.shell import parse as parse_shell
from hotplex.waf.wrappers import SHELLS, WRAPPERS, command_name, runs, unwrap

__all__ = ["BASE_VERBS", "Analysis", "Analyzer", "ScriptView", "View", "render_word"]

MAX_DEPTH = 8
MAX_NESTED = 256
MAX_ARGV = 4096
MAX_DECODED = 1 << 20
_RESERVED = word_set("then do else elif if while until ! { } fi done esac in")
BASE_VERBS = (
    SHELLS
    | (frozenset(WRAPPERS) - _RESERVED)
    | word_set(
        "python python2 python3 pypy pypy3 node nodejs deno bun perl ruby php lua luajit awk "
        "gawk mawk nawk pwsh powershell eval exec source env command busybox xargs find trap "
        "alias ssh su runuser sg script flock watch tmux screen docker podman kubectl crontab "
        "at base64 xxd openssl gunzip zcat rev printf echo"
    )
)
_NEEDS_QUOTES = re.compile(r"[\s;&|<>()'\"]")
_ASSIGN = re.compile(r"([A-Za-z_]\w*)(\[[^\]]*\])?(\+?)=")
_DOWNLOADERS = frozenset({"curl", "wget", "fetch", "aria2c", "http", "https", "lwp-download"})
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
_CRON_SCHEDULE = re.compile(r"\s*(?:@\w+|(?:\S+\s+){5})")
# files whose content is run later as shell (start-up files, cron tables)
_RUN_LATER = re.compile(
    r"(?:^|/)(?:\.(?:bashrc|bash_profile|bash_login|profile|zshrc|zprofile|zshenv|zlogin|kshrc)"
    r"|bash\.bashrc|profile|rc\.local)$|^/etc/profile\.d/|^/etc/init\.d/"
)
_RUN_LATER_VARS = frozenset({"PROMPT_COMMAND", "PS1", "PS4", "BASH_ENV", "ENV"})
_RUN_LATER_CRON = re.compile(r"^/etc/cron|^/var/spool/cron|^/etc/anacrontab")
_SENSITIVE_CWD = re.compile(
    r"/|~(?:/.*)?|/(?:bin|boot|dev|etc|lib\w*|opt|proc|root|sbin|srv|sys|usr|var|home|Users)"
    r"(?:/.*)?"
)


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


@dataclass(frozen=True, slots=True)
class _Result:
    view: str
    stage: Stage | None


def render_word(word: str) -> str:
    """A word as it appears in a view."""
    word = word.replace("\n", " ").replace("\t", " ")
    if not word:
        return '""'
    return f'"{word}"' if _NEEDS_QUOTES.search(word) else word


def _name_of(word: str) -> str:
    if word.startswith(("$(", "<(", ">(")):
        return render_word(word)
    return command_name(word)


def _file_key(path: str) -> str:
    key = canonical_arg(path)
    return key[2:] if key.startswith("./") else key


class Analyzer:
    """Collects the views of one text. ``prose`` parses the top level as a sentence and
    also tries each known command name inside it as the start of a command."""

    def __init__(self, *, verbs: frozenset[str] = frozenset(), prose: bool = False) -> None:
        self.known = BASE_VERBS | verbs
        self.prose = prose
        self.result = Analysis()
        self._files: dict[str, tuple[str, str]] = {}
        self._nested = 0
        self._decoded = 0
        self._subs: dict[int, tuple[str | None, str]] = {}
        self._too_deep = False

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
        return Hooks(
            command_value=lambda script, env: self._substitution(script, env, depth, span)[0],
            render=lambda script, env: self._substitution(script, env, depth, span)[1],
        )

    def _expand(self, word: Word, env: Env, depth: int, span: tuple[int, int] | None) -> list[str]:
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
            return cached
        self._subs[key] = (None, "...")
        if depth >= MAX_DEPTH:
            self._limit(span or (0, 0))
            return self._subs[key]
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
        self._subs[key] = (value, rendered)
        return self._subs[key]

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
                if name in _RUN_LATER_VARS and isinstance(value, str):
                    self.source(value, depth=depth + 1, span=where)
            shown = [f"{n}={' '.join(v) if isinstance(v, list) else v}" for n, v in assigns]
            text = " ".join([render_word(s) for s in shown] + rendered)
            if text:
                self._add(text, where, "assignment")
            return _Result(text, None)
        self._builtin(argv, env, stdin, depth, where)
        if self.prose and depth == 0 and command_name(argv[0]) not in self.known:
            # in a sentence, each known command name may start the command
            restarts = [
                j for j in range(1, len(argv))
                if command_name(argv[j]) in self.known and command_name(argv[j]) not in _RESERVED
            ]
            for j in restarts[1:]:
                self._emit(argv[j:], rendered, [], None, env, 0, (starts[j], where[1]), None,
                           "prose")
            if restarts:
                j = restarts[0]
                return self._emit(argv[j:], rendered, writes, stdin, env, depth,
                                  (starts[j], where[1]), upstream, "prose")
        return self._emit(argv, rendered, writes, stdin, env, depth, where, upstream, "direct")

    def _builtin(self, argv: list[str], env: Env, stdin: str | None, depth: int,
                 where: tuple[int, int]) -> None:
        name = command_name(argv[0])
        args = argv[1:]
        if name in ("export", "declare", "typeset", "local", "readonly"):
            for arg in args:
                m = _ASSIGN.match(arg)
                if m and not m.group(2):
                    value = arg[m.end() :]
                    if value.startswith("(") and value.endswith(")"):
                        env.vars[m.group(1)] = value[1:-1].split()
                    else:
                        env.vars[m.group(1)] = value
                    if m.group(1) in _RUN_LATER_VARS:
                        self.source(value, depth=depth + 1, span=where)
        elif name == "read" and stdin is not None:
            names = [a for a in args if not a.startswith("-") and re.fullmatch(r"\w+", a)]
            values = stdin.rstrip("\n").split()
            if "-a" in args and names:
                env.vars[names[-1]] = values
            elif names:
                for k, var in enumerate(names):
                    last = k == len(names) - 1
                    env.vars[var] = (
                        " ".join(values[k:]) if last else (values[k] if k < len(values) else "")
                    )
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
        unwrapped = unwrap(argv)
        inner = list(unwrapped.argv)
        full = " ".join(
            [_name_of(argv[0]), *(render_word(canonical_arg(a)) for a in argv[1:]), *rendered]
        )
        if unwrapped.wrappers:
            self._add(full, where, "wrapped")
        for script in unwrapped.scripts:
            self.source(script, depth=depth + 1, span=where, env=env.copy())
        if "xargs" in unwrapped.wrappers and upstream:
            piped = self._evaluate(upstream)
            if piped:
                inner += piped.split()[:64]
        if not inner:
            if not unwrapped.wrappers:
                self._add(full, where, origin)
            return _Result(full, None)
        name = _name_of(inner[0])
        args = [render_word(canonical_arg(self._in_cwd(a, env))) for a in inner[1:]]
        names = [name]
        if (
            any(c in name for c in "*?[")
            and name.strip("*?[]")
            and not name.startswith(("$(", '"'))
        ):
            names = [v for v in sorted(self.known) if fnmatchcase(v, name)][:8] or names
        views = [" ".join([n, *args, *rendered]) for n in names]
        for view in views:
            self._add(view, where, origin)
        self._follow(inner, name, stdin, env, depth, where, upstream)
        stage = Stage(tuple(inner), stdin)
        self._track(inner, name, writes, stage, upstream, views[0], where, depth)
        return _Result(views[0], stage)

    @staticmethod
    def _in_cwd(arg: str, env: Env) -> str:
        """A relative path after ``cd /`` (or home, or a system directory), made absolute."""
        cwd = env.vars.get("@cwd")
        if not isinstance(cwd, str) or not arg or arg[0] in "-/~$" or "://" in arg or "=" in arg:
            return arg
        return cwd.rstrip("/") + "/" + arg

    # -- what a command runs -------------------------------------------------------------

    def _follow(
        self,
        inner: list[str],
        name: str,
        stdin: str | None,
        env: Env,
        depth: int,
        where: tuple[int, int],
        upstream: list[Stage] | None,
    ) -> None:
        r = runs(tuple(inner))
        for script in r.scripts:
            nested_env = Env(dict(env.vars), list(r.positional))
            self.source(script, depth=depth + 1, span=where, env=nested_env)
        for argv in r.argvs:
            self._emit(
                list(argv),
                [],
                [],
                None,
                env,
                depth + 1,
                where,
                upstream if r.xargs else None,
                "nested",
            )
        for lang, code in r.code:
            self.code(lang, code, depth=depth + 1, span=where, synthetic=False)
        if r.stdin:
            payload = stdin
            if payload is None and upstream:
                payload = self._evaluate(upstream)
            if payload:
                self._payload(r.stdin, payload, depth + 1, where)
        script_file = r.file if r.file else (inner[0] if "/" in inner[0] else None)
        if script_file:
            known = self._files.get(_file_key(script_file))
            lang = r.file_lang if r.file else "shell"
            if known is not None and known[0] == "content":
                self._payload(lang, known[1], depth + 1, where)
            elif known is not None:
                shell = name if r.file else "sh"
                self._add(f"{shell} <({known[1]})", where, "synthetic")

    def _payload(self, lang: str, text: str, depth: int, where: tuple[int, int]) -> None:
        if lang == "shell":
            self.source(text, depth=depth, span=where)
        elif lang == "crontab":
            for line in text.splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    m = _CRON_SCHEDULE.match(line)
                    self.source(line[m.end() :] if m else line, depth=depth, span=where)
        else:
            self.code(lang, text, depth=depth, span=where)

    def _store(self, target: str, content: str, where: tuple[int, int], depth: int) -> None:
        key = _file_key(target)
        self._files[key] = ("content", content)
        if _RUN_LATER.search(key):
            self._payload("shell", content, depth + 1, where)
        elif _RUN_LATER_CRON.search(key):
            self._payload("crontab", content, depth + 1, where)

    def _track(
        self,
        inner: list[str],
        name: str,
        writes: list[str],
        stage: Stage,
        upstream: list[Stage] | None,
        view: str,
        where: tuple[int, int],
        depth: int,
    ) -> None:
        """Remember files this command writes, for a later command that runs them."""
        if writes:
            content = self._evaluate([*(upstream or []), stage]) if upstream is not None else None
            for target in writes:
                if content is not None:
                    self._store(target, content, where, depth)
                elif name in _DOWNLOADERS:
                    self._files[_file_key(target)] = ("download", view)
        if name == "tee" and upstream:
            content = self._evaluate(upstream)
            for target in inner[1:]:
                if not target.startswith("-") and content is not None:
                    self._store(target, content, where, depth)
        if name in _DOWNLOADERS:
            downloaded = _download_target(name, inner[1:])
            if downloaded:
                self._files[_file_key(downloaded)] = ("download", view)
        if name in ("cp", "mv", "install") and len(inner) >= 3:
            source = self._files.get(_file_key(inner[-2]))
            if source is not None:
                self._files[_file_key(inner[-1])] = source


def _download_target(name: str, args: list[str]) -> str | None:
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
