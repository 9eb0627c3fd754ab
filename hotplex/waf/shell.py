"""A tolerant parser for the shell language (bash and POSIX sh).

It never fails: unbalanced quotes run to the end, stray parentheses separate commands.
It keeps what matters for deciding what would run: words as parts (literal, quoted,
variable, command and process substitution), redirections with here-document bodies,
pipelines, lists, groups and function definitions, with offsets into the source.

``prose`` mode parses a sentence of a chat prompt: ``#`` starts no comment and an
apostrophe inside a word that does not close in that word (``don't``) is a letter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "Command",
    "FuncDef",
    "Group",
    "Part",
    "Pipeline",
    "Redirect",
    "Script",
    "Simple",
    "Word",
    "ansi_c",
    "parse",
    "parse_fragment",
]

MAX_NESTING = 24

_BLANK = re.compile(r"[ \t]+")
_SPACES = re.compile(r"\s+")
_SPACE = re.compile(r"\s")
_PLAIN = re.compile(r"[^\s'\"\\$`;&|()<>]+")
_DQ_PLAIN = re.compile(r"[^\"\\$`]+")
_FRAG_PLAIN = re.compile(r"[^'\"\\$`]+")
_REDIRECT = re.compile(r"(\d+|\{[A-Za-z_]\w*\})?(&>>|&>|>>|>&|>\||<<<|<<-|<<|<>|<&|>|<)")
_REDIRECT_START = frozenset("0123456789{<>&")
_VARNAME = re.compile(r"[A-Za-z_]\w*|[0-9@*#?$!-]")
_FUNC_PARENS = re.compile(r"\(\s*\)")
_ASSIGN_PREFIX = re.compile(r"[A-Za-z_]\w*(?:\[[^\]]*\])?\+?=")
_ESCAPE = re.compile(
    r"\\(?:x([0-9a-fA-F]{1,2})|u([0-9a-fA-F]{1,4})|U([0-9a-fA-F]{1,8})|([0-7]{1,3})"
    r"|c(.)|(.))",
    re.DOTALL,
)
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "E": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
}


@dataclass(slots=True)
class Part:
    """A piece of a word: ``lit`` (text), ``var`` (text is the expression inside ``${}``),
    ``cmd`` (command substitution), ``proc`` (process substitution, ``direction`` ``<``
    or ``>``) or ``arith`` (text kept as written)."""

    kind: str
    text: str = ""
    quoted: bool = False
    script: Script | None = None
    direction: str = ""


@dataclass(slots=True)
class Word:
    parts: list[Part]
    start: int
    end: int
    array: list[Word] | None = None

    def literal(self) -> str | None:
        """The word's text when it is made of literal parts only."""
        if all(p.kind == "lit" for p in self.parts):
            return "".join(p.text for p in self.parts)
        return None

    def is_bare(self, text: str) -> bool:
        if len(self.parts) != 1:
            return False
        part = self.parts[0]
        return part.kind == "lit" and not part.quoted and part.text == text


@dataclass(slots=True)
class Redirect:
    fd: str
    op: str
    target: Word | None
    start: int
    end: int
    heredoc: str | None = None
    strip_tabs: bool = False
    delimiter: str = ""


@dataclass(slots=True)
class Simple:
    words: list[Word]
    redirects: list[Redirect]
    start: int
    end: int


@dataclass(slots=True)
class Group:
    body: Script
    redirects: list[Redirect]
    start: int
    end: int
    subshell: bool


@dataclass(slots=True)
class FuncDef:
    name: str
    body: Script
    start: int
    end: int


Command = Simple | Group | FuncDef


@dataclass(slots=True)
class Pipeline:
    commands: list[Command]
    start: int
    end: int
    background: bool = False


@dataclass(slots=True)
class Script:
    """``items`` pairs each pipeline with the connector before it (``;`` first)."""

    items: list[tuple[str, Pipeline]] = field(default_factory=list)
    too_deep: bool = False


def ansi_c(body: str) -> str:
    """Decode the body of a ``$'...'`` string."""

    def one(m: re.Match[str]) -> str:
        hex2, u4, u8, octal, ctrl, other = m.groups()
        if hex2 or u4 or u8:
            code = int(hex2 or u4 or u8, 16)
            return chr(code) if code < 0x110000 and not 0xD800 <= code <= 0xDFFF else ""
        if octal:
            return chr(int(octal, 8) & 0xFF)
        if ctrl:
            return chr(ord(ctrl) & 0x1F)
        return _SIMPLE_ESCAPES.get(other, "\\" + other)

    return _ESCAPE.sub(one, body)


class _Parser:
    def __init__(self, src: str, *, prose: bool, nesting: int = 0, base: int = 0) -> None:
        self.src = src
        self.n = len(src)
        self.pos = 0
        self.prose = prose
        self.nesting = nesting
        self.base = base
        self.pending: list[Redirect] = []
        self.too_deep = False

    # -- lists and commands ---------------------------------------------------------

    def script(self, stop: str | None) -> Script:
        if self.nesting > MAX_NESTING:
            self.too_deep = True
            self.pos = self.n
            return Script(too_deep=True)
        self.nesting += 1
        try:
            return self._script(stop)
        finally:
            self.nesting -= 1

    def _script(self, stop: str | None) -> Script:
        src, out = self.src, Script()
        connector = ";"
        commands: list[Command] = []
        words: list[Word] = []
        redirects: list[Redirect] = []
        group: Group | FuncDef | None = None

        def end_command() -> None:
            nonlocal words, redirects, group
            if group is not None:
                if isinstance(group, Group):
                    group.redirects.extend(redirects)
                    if redirects:
                        group.end = redirects[-1].end
                commands.append(group)
            elif words or redirects:
                spans = [(w.start, w.end) for w in words] + [(r.start, r.end) for r in redirects]
                commands.append(
                    Simple(words, redirects, min(s for s, _ in spans), max(e for _, e in spans))
                )
            words, redirects, group = [], [], None

        def end_pipeline(next_connector: str) -> None:
            nonlocal commands, connector
            end_command()
            if commands:
                first, last = commands[0], commands[-1]
                pipeline = Pipeline(commands, first.start, last.end, next_connector == "&")
                out.items.append((connector, pipeline))
                connector = next_connector
            elif next_connector == "&":
                connector = "&"
            commands = []

        while True:
            m = _BLANK.match(src, self.pos)
            if m:
                self.pos = m.end()
            if self.pos >= self.n:
                break
            c = src[self.pos]
            if c == "\n":
                end_pipeline(";")
                self.pos += 1
                self._read_heredocs()
                continue
            if c == "#" and not self.prose:
                nl = src.find("\n", self.pos)
                self.pos = self.n if nl < 0 else nl
                continue
            if c == ")":
                self.pos += 1
                if stop == ")":
                    break
                end_pipeline(";")
                continue
            if c == "(":
                if self._function_parens(words):
                    if len(words) > 1 and not self._function_keyword(words):
                        # prose: "run f(){ ...; }; f" - the words before the name are apart
                        last = words.pop()
                        end_command()
                        words = [last]
                    name = words[-1].literal() or "?"
                    start = words[0].start
                    self.pos = _FUNC_PARENS.match(src, self.pos).end()  # type: ignore[union-attr]
                    body = self._compound()
                    words = []
                    group = FuncDef(name, body, start, self.pos + self.base)
                    end_command()
                    continue
                if not words and not redirects and group is None:
                    start = self.pos + self.base
                    self.pos += 1
                    body = self.script(")")
                    group = Group(body, [], start, self.pos + self.base, subshell=True)
                    continue
                self.pos += 1
                end_pipeline(";")
                continue
            if c in ";&|" and not src.startswith(("&>", "&>>"), self.pos):
                two = src[self.pos : self.pos + 2]
                if two in ("&&", "||"):
                    self.pos += 2
                    end_pipeline(two)
                elif two in (";;", ";&", "|&"):
                    self.pos += 3 if src.startswith(";;&", self.pos) else 2
                    if two == "|&":
                        end_command()
                    else:
                        end_pipeline(";")
                elif c == "|":
                    self.pos += 1
                    end_command()
                else:
                    self.pos += 1
                    end_pipeline(c)
                continue
            if c in "<>" and src.startswith(("<(", ">("), self.pos):
                word = self._word()
                if word is not None:
                    words.append(word)
                continue
            rm = _REDIRECT.match(src, self.pos) if c in _REDIRECT_START else None
            if rm is not None:
                redirects.append(self._redirect(rm))
                continue
            word = self._word()
            if word is None:
                self.pos += 1
                continue
            at_start = not words and not redirects and group is None
            if at_start and stop == "}" and word.is_bare("}"):
                break
            if word.is_bare("{") and (at_start or self._function_keyword(words)):
                start = word.start
                body = self.script("}")
                if words:
                    name = words[1].literal() or "?"
                    group = FuncDef(name, body, words[0].start, self.pos + self.base)
                    words = []
                else:
                    group = Group(body, [], start, self.pos + self.base, subshell=False)
                continue
            words.append(word)
        end_pipeline(";")
        return out

    def _function_parens(self, words: list[Word]) -> bool:
        if not (len(words) == 1 or self._function_keyword(words) or (self.prose and words)):
            return False
        return _FUNC_PARENS.match(self.src, self.pos) is not None

    @staticmethod
    def _function_keyword(words: list[Word]) -> bool:
        return len(words) == 2 and words[0].is_bare("function")

    def _compound(self) -> Script:
        m = _SPACES.match(self.src, self.pos)
        self.pos = m.end() if m else self.pos
        if self.src.startswith("{", self.pos):
            self.pos += 1
            return self.script("}")
        if self.src.startswith("(", self.pos):
            self.pos += 1
            return self.script(")")
        return Script()

    def _redirect(self, m: re.Match[str]) -> Redirect:
        start = self.pos
        fd, op = m.group(1) or "", m.group(2)
        self.pos = m.end()
        bm = _BLANK.match(self.src, self.pos)
        if bm:
            self.pos = bm.end()
        target = self._word() if self.pos < self.n and self.src[self.pos] != "\n" else None
        end = target.end - self.base if target else min(self.pos, self.n)
        redirect = Redirect(fd, op, target, start + self.base, end + self.base)
        if op in ("<<", "<<-"):
            redirect.strip_tabs = op == "<<-"
            redirect.delimiter = "".join(p.text for p in target.parts) if target else ""
            self.pending.append(redirect)
        return redirect

    def _read_heredocs(self) -> None:
        src = self.src
        for redirect in self.pending:
            lines: list[str] = []
            while self.pos < self.n:
                nl = src.find("\n", self.pos)
                end = self.n if nl < 0 else nl
                line = src[self.pos : end]
                self.pos = end + 1 if nl >= 0 else self.n
                check = line.lstrip("\t") if redirect.strip_tabs else line
                if check == redirect.delimiter:
                    break
                lines.append(check)
            redirect.heredoc = "\n".join(lines) + "\n" if lines else ""
        self.pending = []

    # -- words ------------------------------------------------------------------------

    def _word(self) -> Word | None:
        src, start = self.src, self.pos
        parts: list[Part] = []
        while self.pos < self.n:
            m = _PLAIN.match(src, self.pos)
            if m is not None:
                parts.append(Part("lit", m.group()))
                self.pos = m.end()
                continue
            c = src[self.pos]
            if c in "<>" and not parts and src.startswith(("<(", ">("), self.pos):
                self.pos += 2
                parts.append(Part("proc", script=self._sub(")"), direction=c))
                continue
            if c == "(" and _is_assign_prefix(parts):
                word = Word(parts, start + self.base, 0, array=self._array())
                word.end = min(self.pos, self.n) + self.base
                return word
            if c in " \t\n;&|()<>":
                break
            if c == "'":
                if self.prose and self._apostrophe(parts):
                    parts.append(Part("lit", "'"))
                    self.pos += 1
                    continue
                end = src.find("'", self.pos + 1)
                end = self.n if end < 0 else end
                parts.append(Part("lit", src[self.pos + 1 : end], quoted=True))
                self.pos = end + 1
            elif c == '"':
                self._double_quoted(parts)
            elif c == "\\":
                nxt = src[self.pos + 1 : self.pos + 2]
                if nxt and nxt != "\n":
                    parts.append(Part("lit", nxt, quoted=True))
                self.pos += 2
            elif c == "$":
                self._dollar(parts, quoted=False)
            else:  # backtick
                parts.append(self._backtick(quoted=False))
        if not parts:
            return None
        self.pos = min(self.pos, self.n)
        return Word(parts, start + self.base, self.pos + self.base)

    def _apostrophe(self, parts: list[Part]) -> bool:
        if not parts or not self.src[self.pos - 1].isalnum():
            return False
        space = _SPACE.search(self.src, self.pos + 1)
        limit = space.start() if space else self.n
        return self.src.find("'", self.pos + 1, limit) < 0

    def _array(self) -> list[Word]:
        self.pos += 1
        items: list[Word] = []
        while self.pos < self.n:
            m = _SPACES.match(self.src, self.pos)
            if m:
                self.pos = m.end()
            if self.pos >= self.n:
                break
            if self.src[self.pos] == ")":
                self.pos += 1
                break
            word = self._word()
            if word is None:
                self.pos += 1
            else:
                items.append(word)
        return items

    def _double_quoted(self, parts: list[Part]) -> None:
        src = self.src
        self.pos += 1
        parts.append(Part("lit", "", quoted=True))
        while self.pos < self.n:
            m = _DQ_PLAIN.match(src, self.pos)
            if m is not None:
                parts.append(Part("lit", m.group(), quoted=True))
                self.pos = m.end()
                continue
            c = src[self.pos]
            if c == '"':
                self.pos += 1
                return
            if c == "\\":
                nxt = src[self.pos + 1 : self.pos + 2]
                if nxt in ('"', "\\", "$", "`"):
                    parts.append(Part("lit", nxt, quoted=True))
                elif nxt != "\n":
                    parts.append(Part("lit", "\\" + nxt, quoted=True))
                self.pos += 2
            elif c == "$":
                self._dollar(parts, quoted=True)
            else:
                parts.append(self._backtick(quoted=True))

    def _dollar(self, parts: list[Part], *, quoted: bool) -> None:
        src, pos = self.src, self.pos
        nxt = src[pos + 1 : pos + 2]
        if src.startswith("$((", pos):
            end = _balanced(src, pos + 1, "(", ")")
            parts.append(Part("arith", src[pos:end], quoted=quoted))
            self.pos = end
        elif nxt == "(":
            self.pos += 2
            parts.append(Part("cmd", quoted=quoted, script=self._sub(")")))
        elif nxt == "{":
            end = _balanced(src, pos + 1, "{", "}")
            inner = src[pos + 2 : end - 1] if src[end - 1 : end] == "}" else src[pos + 2 : end]
            parts.append(Part("var", inner, quoted=quoted))
            self.pos = end
        elif nxt == "'" and not quoted:
            end = pos + 2
            while end < self.n and src[end] != "'":
                end += 2 if src[end] == "\\" else 1
            parts.append(Part("lit", ansi_c(src[pos + 2 : end]), quoted=True))
            self.pos = end + 1
        elif nxt == '"' and not quoted:
            self.pos += 1
            self._double_quoted(parts)
        else:
            m = _VARNAME.match(src, pos + 1)
            if m is None:
                parts.append(Part("lit", "$", quoted=quoted))
                self.pos += 1
            else:
                parts.append(Part("var", m.group(), quoted=quoted))
                self.pos = m.end()

    def _sub(self, stop: str) -> Script:
        saved = self.pending
        self.pending = []
        script = self.script(stop)
        self.pending = saved + self.pending
        return script

    def _backtick(self, *, quoted: bool) -> Part:
        src, start = self.src, self.pos + 1
        end = start
        while end < self.n and src[end] != "`":
            end += 2 if src[end] == "\\" else 1
        body = re.sub(r"\\([`$\\])", r"\1", src[start:end])
        self.pos = end + 1
        inner = _Parser(body, prose=self.prose, nesting=self.nesting + 1, base=self.base + start)
        script = inner.script(None)
        self.too_deep |= inner.too_deep
        return Part("cmd", quoted=quoted, script=script)


def _is_assign_prefix(parts: list[Part]) -> bool:
    if len(parts) != 1 or parts[0].kind != "lit" or parts[0].quoted:
        return False
    m = _ASSIGN_PREFIX.fullmatch(parts[0].text)
    return m is not None


def _balanced(src: str, pos: int, open_: str, close: str) -> int:
    """Offset just past the bracket that closes the one at ``pos`` (quotes skipped)."""
    depth, i, n = 0, pos, len(src)
    while i < n:
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if c == "'" and open_ == "{":
            j = src.find("'", i + 1)
            i = n if j < 0 else j + 1
            continue
        if c == open_:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def parse(src: str, *, prose: bool = False, base: int = 0) -> Script:
    """Parse shell source; offsets in the result are ``base`` plus offsets into ``src``."""
    parser = _Parser(src, prose=prose, base=base)
    script = parser.script(None)
    script.too_deep |= parser.too_deep
    return script


def parse_fragment(text: str) -> Word:
    """Parse text as one word in which blanks are literal (a ``${x:-...}`` default)."""
    parser = _Parser(text, prose=False)
    parts: list[Part] = []
    while parser.pos < parser.n:
        m = _FRAG_PLAIN.match(text, parser.pos)
        if m is not None:
            parts.append(Part("lit", m.group(), quoted=True))
            parser.pos = m.end()
            continue
        c = text[parser.pos]
        if c == "'":
            end = text.find("'", parser.pos + 1)
            end = parser.n if end < 0 else end
            parts.append(Part("lit", text[parser.pos + 1 : end], quoted=True))
            parser.pos = end + 1
        elif c == '"':
            parser._double_quoted(parts)
        elif c == "\\":
            parts.append(Part("lit", text[parser.pos + 1 : parser.pos + 2], quoted=True))
            parser.pos += 2
        elif c == "$":
            parser._dollar(parts, quoted=True)
        else:
            parts.append(parser._backtick(quoted=True))
    return Word(parts, 0, len(text))
