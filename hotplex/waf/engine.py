"""The :class:`Waf`: rules compiled once, then pure checks of prompts, commands, paths and
tool calls."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotplex.errors import ConfigError
from hotplex.waf._re2 import Pattern, PatternSet, error, escape
from hotplex.waf.analyze import BASE_VERBS, COMMON_WORDS, Analysis, Analyzer
from hotplex.waf.context import Anchor, classify
from hotplex.waf.expand import Env
from hotplex.waf.model import ACTION_RANK, Action, Hit, Rule, Verdict
from hotplex.waf.normalize import Normalized, check_input, normalize
from hotplex.waf.paths import canonical_path, canonical_url
from hotplex.waf.prompt import candidate_source, scan
from hotplex.waf.rules import (
    CompiledRule,
    compile_pattern,
    compile_rules,
    load_rule_file,
    resolve_overrides,
    shipped_rules,
)

__all__ = ["DEFAULT_MAX_BYTES", "Waf"]

DEFAULT_MAX_BYTES = 1_048_576
_ENFORCED = frozenset({"order", "command", "path", "url"})
_MARKERS = (
    r"\w(?:''|\"\")|(?:''|\"\")\w|\w'\w+'|\w\"\w+\"|'\w+'\w|\"\w+\"\w"
    r"|\\[A-Za-z]|\$[{('A-Za-z_@!*#?0-9]|\{[^{}\s]*,[^{}\s]*\}|[/\w]\?[\w?]|/\?"
    r"|\[[a-z]{1,3}\]|[A-Za-z0-9+/]{24,}={0,2}|\b[A-Za-z_]\w*=\S|\(\)\s*\{|[<>]\(|<<|(?:^|[^`])`[^`\s]"
    r"|/dev/(?:tcp|udp)/|169\.254\.|metadata\.google|authorized_keys|sudoers|NOPASSWD"
    r"|\.ssh/|/etc/(?:shadow|passwd)|\.aws/|release_agent|core_pattern|sysrq|ld\.so\.preload"
    r"|/environ\b|[>|]\s*/(?:dev|etc|boot|proc|sys)/"
)


@dataclass(frozen=True, slots=True)
class _Raw:
    rule: Rule
    subject: str
    span: tuple[int, int]
    origin: str


def _alternation(names: Iterable[str]) -> str:
    ordered = sorted({n for n in names if n and n not in (".", ":")}, key=len, reverse=True)
    return "|".join(escape(n) for n in ordered)


def _triggers(verbs: frozenset[str]) -> tuple[Pattern, Pattern]:
    """(prose trigger, code trigger): patterns that pick what is worth tokenising."""
    plain = _alternation(verbs - COMMON_WORDS)
    common = _alternation(verbs & COMMON_WORDS)
    # in code, only a name in command position (line start, after ; | & ( { ` $( or a
    # reserved word, past assignments and a directory) can start a command
    position = (
        r"(?:^[ \t]*(?:[$#%>][ \t]+)?|[;&|({`!][ \t]*|\$\([ \t]*"
        r"|\b(?:then|do|else|elif|if|while|until|time)[ \t]+)"
        r"(?:[A-Za-z_]\w*=\S*[ \t]+)*"
        r"(?:(?:[\w.~/-]*/)?(?:sudo|doas|env|nohup|exec|command|builtin|nice|timeout|xargs"
        r"|busybox|stdbuf|setsid|unbuffer|chronic|flock|watch)(?:[ \t]+(?:-\S*|\d\S*|"
        r"[A-Za-z_]\w*=\S*))*[ \t]+)*(?:[\w.~/-]*/)?"
    )
    follower = r"[\d.]*[ \t]+[-/~$\"'|<>.&;(]"
    # in prose a command name counts when it looks used as one: a flag, path, file name,
    # quote, pipe or redirection within three words after it, an execution verb or a
    # colon right before it, or the start of a line
    shaped = r"(?:[-/~$\"'|<>*]|\./|[^\s]*[/=]|[^\s]*\.[A-Za-z])"
    prose = (
        "(?m)(?:^|[^\\w.-])(?:"
        + plain
        + r")[\d.]*(?:[ \t]+[^\s]+){0,3}?[ \t]+"
        + shaped
        + r"|\b(?:run|execute|exec|type|enter|paste|launch|invoke|try|use|with|via|using|do)"
        + r"[ \t]+(?:"
        + plain
        + r")[\d.]*(?:$|[^\w-])"
        + r"|:[ \t]+(?:"
        + plain
        + r")[\d.]*(?:$|[^\w-])"
        + r"|^[ \t]*(?:"
        + plain
        + r")[\d.]*(?:$|[^\w-])"
        + r"|(?:^|[^\w.-])(?:"
        + common
        + ")"
        + follower
        # a common word whose words go, by redirection, into a path: `echo hi >> ~/.bashrc`
        + r"|(?:^|[^\w.-])(?:"
        + common
        + r")(?:[ \t]+[^\s<>|]+){1,3}?[ \t]*>{1,2}[ \t]*[~/$.\"']"
        + "|"
        + _MARKERS
    )
    code = compile_pattern(
        "(?m)"
        + position
        + "(?:(?:"
        + plain
        + r")[\d.]*(?:$|[^\w-])|(?:"
        + common
        + ")"
        + follower
        # a line that is only a redirection (`> /etc/group`, `: > /var/log/syslog`)
        + r"|(?::[ \t]*)?\d*>{1,2}\|?[ \t]*[\"']?[~/$]"
        + ")|"
        + _MARKERS
        + r"|\bfor[ \t]+\w+[ \t]+in\b"
    )
    return compile_pattern(prose), code


def _pattern_set(rules: Sequence[CompiledRule]) -> tuple[PatternSet, list[int]] | None:
    """All patterns of ``rules`` in one RE2 set, and the rule index of each pattern."""
    patterns = [(i, p) for i, r in enumerate(rules) for p in r.rule.patterns]
    try:
        return PatternSet([p for _, p in patterns]), [i for i, _ in patterns]
    except error:
        return None


def _gate(rules: Sequence[CompiledRule]) -> Pattern:
    if not rules:
        return None
    try:
        return compile_pattern("|".join(f"(?:{p})" for r in rules for p in r.rule.patterns))
    except error:
        return None


class Waf:
    """The command WAF. Build it once (compiling rules costs milliseconds), then call the
    ``check_*`` methods from any thread: they are pure functions of the text, the rules and
    the configuration, and do no I/O.

    ``overrides`` maps a rule id or a category to ``block``, ``ask``, ``warn`` or ``off``
    (a rule id beats its category). ``allow`` holds RE2 patterns for a trusted workspace: a
    hit whose canonical command (or canonical path, or URL) fully matches one is allowed.
    Text longer than ``max_bytes`` (UTF-8) is refused with :class:`WafInputError`.
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        overrides: Mapping[str, str] | None = None,
        allow: Sequence[str] = (),
        max_bytes: int = DEFAULT_MAX_BYTES,
        home: str | None = None,
    ) -> None:
        compiled = compile_rules(rules)
        self.rules: tuple[Rule, ...] = tuple(c.rule for c in compiled)
        actions = resolve_overrides(self.rules, dict(overrides or {}))
        self._actions = {rule_id: a for rule_id, a in actions.items() if a != "off"}
        active = [c for c in compiled if c.rule.id in self._actions]
        self._command = [
            c for c in active if c.rule.kind == "command" and c.rule.scope == "command"
        ]
        self._script = [c for c in active if c.rule.kind == "command" and c.rule.scope == "script"]
        self._path = [c for c in active if c.rule.kind == "path"]
        self._url = [c for c in active if c.rule.kind == "url"]
        self._command_gate = _gate(self._command)
        self._script_gate = _gate(self._script)
        self._command_set = _pattern_set(self._command)
        self._verbs = frozenset(v for c in active if c.rule.kind == "command" for v in c.rule.verbs)
        self._prose_trigger, self._code_trigger = _triggers(self._verbs | BASE_VERBS)
        allowed = []
        for index, pattern in enumerate(allow):
            try:
                allowed.append(compile_pattern(pattern))
            except error as exc:
                raise ConfigError(
                    f"security.waf.allow[{index}]: invalid RE2 pattern {pattern!r}: {exc}",
                    path=f"security.waf.allow[{index}]",
                ) from None
        self._allow = tuple(allowed)
        self.max_bytes = max_bytes
        self._home = home or str(Path.home())

    @classmethod
    def from_settings(cls, settings: Any, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Waf:
        """Build from ``security.waf`` settings: the shipped ``waf.yaml``, then each of
        ``rule_files``, with ``overrides`` and ``allow``. Raises ConfigError naming the file
        and rule id of any problem."""
        rules = list(shipped_rules())
        for path in getattr(settings, "rule_files", ()) or ():
            rules.extend(load_rule_file(path))
        return cls(
            rules,
            overrides=dict(getattr(settings, "overrides", {}) or {}),
            allow=tuple(getattr(settings, "allow", ()) or ()),
            max_bytes=max_bytes,
        )

    def action_of(self, rule_id: str) -> str:
        """A rule's action after overrides (``off`` when disabled)."""
        return self._actions.get(rule_id, "off")

    # -- checks -------------------------------------------------------------------------

    def check_command(self, command: str) -> Verdict:
        """A shell command an agent wants to run. Every segment of pipelines, lists,
        subshells and substitutions is examined; there is no prose context."""
        check_input(command, max_bytes=self.max_bytes, what="command")
        norm = normalize(command, markup=False)
        analyzer = Analyzer(verbs=self._verbs)
        analyzer.source(norm.text)
        hits = [self._hit(raw, "command", norm) for raw in self._match(analyzer.result)]
        return Verdict.from_hits(_dedupe(hits))

    def check_prompt(self, text: str) -> Verdict:
        """A chat prompt from a person. Commands in fenced blocks, inline code and prose are
        examined; one that is only asked about, explained, quoted or defended against is
        let through (see :mod:`hotplex.waf.context`)."""
        check_input(text, max_bytes=self.max_bytes, what="prompt")
        norm = normalize(text, markup=True)
        doc = scan(norm.text, self._prose_trigger, self._code_trigger)
        contexts: dict[Anchor, str] = {}
        seen: dict[tuple[str, str, tuple[tuple[int, int], ...]], list[_Raw]] = {}
        hits: list[Hit] = []
        for candidate in doc.candidates:
            source = candidate_source(doc, candidate)
            key = (candidate.mode, source, candidate.chunks)
            relative = seen.get(key)
            if relative is None:
                relative = seen[key] = self._analyse(candidate.mode, source, candidate.chunks)
            for found in relative:
                raw = _Raw(
                    found.rule,
                    found.subject,
                    (found.span[0] + candidate.start, found.span[1] + candidate.start),
                    found.origin,
                )
                anchor = candidate.anchor or Anchor(raw.span[0], raw.span[1], bare=True)
                context = contexts.get(anchor)
                if context is None:
                    context = contexts[anchor] = classify(doc.cue, anchor)
                hits.append(self._hit(raw, context, norm))
        return Verdict.from_hits(_dedupe(hits))

    def _analyse(self, mode: str, source: str, chunks: tuple[tuple[int, int], ...]) -> list[_Raw]:
        """Rule hits in one candidate, with spans relative to its start (identical pieces of
        a prompt, such as repeated log lines, are analysed once)."""
        analyzer = Analyzer(verbs=self._verbs, prose=mode == "prose")
        if chunks:
            env = Env()
            for start, end in chunks:
                analyzer.source(source[start:end], base=start, env=env)
        elif mode in ("shell", "prose"):
            analyzer.source(source)
        else:
            analyzer.code(mode, source, depth=0, span=(0, len(source)))
        return self._match(analyzer.result)

    def check_path(self, path: str, *, work_dir: Path, write: bool) -> Verdict:
        """A file path a tool reads or writes. Relative paths are taken from ``work_dir``;
        symlinks are not resolved."""
        check_input(path, max_bytes=self.max_bytes, what="path")
        canon = canonical_path(path, work_dir=str(work_dir), home=self._home)
        hits = []
        for compiled in self._path:
            access = compiled.rule.access
            if (access == "read" and write) or (access == "write" and not write):
                continue
            if compiled.search(canon) is not None:
                raw = _Raw(compiled.rule, canon, (0, len(path)), "path")
                hits.append(self._hit(raw, "path", None, extra=(path,)))
        return Verdict.from_hits(_dedupe(hits))

    def check_url(self, url: str) -> Verdict:
        """A URL a tool fetches (cloud metadata endpoints, file:// URLs)."""
        check_input(url, max_bytes=self.max_bytes, what="URL")
        canon = canonical_url(url)
        hits = [
            self._hit(_Raw(c.rule, canon, (0, len(url)), "url"), "url", None)
            for c in self._url
            if c.search(canon) is not None
        ]
        return Verdict.from_hits(_dedupe(hits))

    def check_tool(self, tool: str, tool_input: Mapping[str, Any], *, work_dir: Path) -> Verdict:
        """A tool call of the agent: Bash commands, file paths of Read/Write/Edit/MultiEdit/
        NotebookEdit/Glob/Grep/LS, WebFetch URLs; other tools are allowed. Content written
        to a shell script is checked as commands, with ``block`` lowered to ``ask``."""
        from hotplex.waf.tools import check_tool

        return check_tool(self, tool, tool_input, work_dir=work_dir)

    # -- matching -----------------------------------------------------------------------

    def _match(self, analysis: Analysis) -> list[_Raw]:
        raws: list[_Raw] = []
        for view in analysis.commands:
            data = view.text.encode("utf-8", "surrogatepass")
            if self._command_gate is not None and self._command_gate.search(data) is None:
                continue
            candidates = self._command
            if self._command_set is not None:
                pattern_set, owners = self._command_set
                matched = pattern_set.matching(data)
                if matched is not None:  # None: the set could not tell, so try every rule
                    candidates = [self._command[i] for i in sorted({owners[j] for j in matched})]
            for compiled in candidates:
                if compiled.search(data) is not None:
                    raws.append(_Raw(compiled.rule, view.text, view.span, view.origin))
        for script in analysis.scripts:
            data = script.text.encode("utf-8", "surrogatepass")
            if self._script_gate is not None and self._script_gate.search(data) is None:
                continue
            for compiled in self._script:
                found = compiled.search(data)
                if found is None:
                    continue
                first = data.count(b"\n", 0, found[0])
                last = data.count(b"\n", 0, max(found[0], found[1] - 1))
                lines = script.text.split("\n")[first : last + 1]
                spans = script.spans[first : last + 1]
                shown = " ".join([lines[0].partition(" ")[2], *lines[1:]])
                span = (min(s for s, _ in spans), max(e for _, e in spans))
                raws.append(_Raw(compiled.rule, shown, span, "script"))
        return raws

    def _allowed(self, *subjects: str) -> bool:
        return any(p.fullmatch(s) is not None for p in self._allow for s in subjects)

    def _hit(
        self, raw: _Raw, context: str, norm: Normalized | None, extra: tuple[str, ...] = ()
    ) -> Hit:
        rule = raw.rule
        configured = self._actions[rule.id]
        action: Action = configured if context in _ENFORCED else "allow"  # type: ignore[assignment]
        if action != "allow" and self._allowed(raw.subject, *extra):
            action, context = "allow", "allow-list"
        span = norm.to_original(raw.span) if norm is not None else raw.span
        return Hit(
            rule_id=rule.id,
            category=rule.category,
            level=rule.level,
            action=action,
            rule_action=configured,  # type: ignore[arg-type]
            description=rule.description,
            span=span,
            matched=raw.subject[:160],
            context=context,
            origin=raw.origin,
        )


def _dedupe(hits: Iterable[Hit]) -> tuple[Hit, ...]:
    best: dict[tuple[str, tuple[int, int] | None], Hit] = {}
    for hit in hits:
        key = (hit.rule_id, hit.span)
        old = best.get(key)
        if old is None or ACTION_RANK[hit.action] > ACTION_RANK[old.action]:
            best[key] = hit
    return tuple(best.values())
