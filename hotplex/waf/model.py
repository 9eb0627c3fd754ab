"""The WAF's records: rules, hits, verdicts, and the input error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hotplex.errors import UserFacingError

__all__ = [
    "ACTIONS",
    "ACTION_RANK",
    "LEVELS",
    "LEVEL_RANK",
    "Action",
    "Hit",
    "Level",
    "Rule",
    "RuleAction",
    "Verdict",
    "WafInputError",
]

Action = Literal["allow", "warn", "ask", "block"]
RuleAction = Literal["block", "ask", "warn"]
Level = Literal["critical", "high", "moderate"]
RuleKind = Literal["command", "path", "url"]
Scope = Literal["command", "script"]
Access = Literal["read", "write", "any"]

LEVELS: tuple[Level, ...] = ("critical", "high", "moderate")
ACTIONS: tuple[RuleAction, ...] = ("block", "ask", "warn")
ACTION_RANK: dict[str, int] = {"allow": 0, "warn": 1, "ask": 2, "block": 3}
LEVEL_RANK: dict[str | None, int] = {None: -1, "moderate": 0, "high": 1, "critical": 2}


class WafInputError(UserFacingError):
    """The text cannot be checked: it is too large or holds control characters.

    The message says which limit was broken; callers refuse the input."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One detection rule.

    ``patterns`` are RE2 expressions; the rule hits when any of them matches a view and
    every pattern in ``requires`` matches the same view. ``kind`` says what the rule looks
    at: ``command`` rules see canonical commands (``scope: command``, one simple command
    per view, ``^`` is the command name) or canonical scripts (``scope: script``, one
    command per line, each line starting with its connector ``;``, ``|``, ``&&``, ``||`` or
    ``&``); ``path`` rules see canonical file paths of Read/Write/Edit tools (``./x`` inside
    the work directory, ``~/x`` under home, else absolute) for the given ``access``; ``url``
    rules see canonical URLs (host lower-cased, numeric IPv4 forms written dotted).
    ``verbs`` lists command names a command rule is about; the prompt prefilter uses them
    to pick the prose lines worth tokenising (a rule without verbs makes every line worth
    it).
    """

    id: str
    category: str
    level: Level
    action: RuleAction
    description: str
    patterns: tuple[str, ...]
    requires: tuple[str, ...] = ()
    kind: RuleKind = "command"
    scope: Scope = "command"
    access: Access = "any"
    verbs: tuple[str, ...] = ()
    source: str = "<code>"


@dataclass(frozen=True, slots=True)
class Hit:
    """A rule that matched, with the action it had after overrides and context.

    ``context`` is why the action is what it is: ``order`` (a prompt asked for the command
    to run), ``command`` (a tool call), ``path``, ``url``, or a reason the hit was let
    through: ``question``, ``explanation``, ``defensive``, ``quoted``, ``negated``,
    ``data`` (a log or text block), ``allow-list``. ``span`` is in original-text offsets
    and covers the command (or pipeline) the rule matched; ``matched`` is the canonical
    form of that command, cut to 160 characters.
    """

    rule_id: str
    category: str
    level: Level
    action: Action
    rule_action: RuleAction
    description: str
    span: tuple[int, int] | None
    matched: str
    context: str
    origin: str = "direct"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision for one text: the most severe hit decides.

    ``action`` is ``allow`` (no hit, or every hit was let through), ``warn`` (pass with an
    audit note), ``ask`` (a person must approve) or ``block``; the rule fields are None
    when the action is ``allow``. ``span`` holds offsets into
    the original text (for a hit inside decoded or nested content, the span of the
    command that carried it). ``hits`` lists every hit, including the ones let through.
    """

    action: Action
    rule_id: str | None = None
    category: str | None = None
    level: Level | None = None
    description: str | None = None
    span: tuple[int, int] | None = None
    matched: str | None = None
    context: str | None = None
    hits: tuple[Hit, ...] = ()

    @property
    def allowed(self) -> bool:
        """True for ``allow`` and ``warn``."""
        return self.action in ("allow", "warn")

    @classmethod
    def from_hits(cls, hits: tuple[Hit, ...]) -> Verdict:
        """The verdict of the most severe hit (action, then level, then earliest span)."""
        if not hits:
            return cls("allow")

        def key(hit: Hit) -> tuple[int, int, int]:
            start = hit.span[0] if hit.span else 0
            return (-ACTION_RANK[hit.action], -LEVEL_RANK[hit.level], start)

        top = min(hits, key=key)
        if top.action == "allow":
            return cls("allow", context=top.context, hits=hits)
        return cls(
            action=top.action,
            rule_id=top.rule_id,
            category=top.category,
            level=top.level,
            description=top.description,
            span=top.span,
            matched=top.matched,
            context=top.context,
            hits=hits,
        )
