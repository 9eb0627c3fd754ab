"""Rule files: YAML with ``macros`` and ``rules``, validated and compiled with RE2.

::

    macros:                      # optional; {{name}} in a pattern is replaced by the value
      home: '(?:~|/root|/home/[^/ ]+)'
    rules:
      - id: delete.home          # unique across all loaded files
        category: deletion
        level: critical          # critical | high | moderate
        action: block            # block | ask | warn
        description: Recursive deletion of a home directory.
        verbs: [rm]              # command names the rule is about (prompt prefilter)
        kind: command            # command (default) | path | url
        scope: command           # command (default) | script (command rules only)
        access: any              # read | write | any (path rules only)
        patterns: ['^rm .*{{home}}$']
        requires: []             # further patterns that must all match the same view

Macros of the shipped file are available to user files. Every error is a
:class:`~hotplex.errors.ConfigError` naming the file and, where there is one, the rule id.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

from hotplex.errors import ConfigError
from hotplex.resources import config_file
from hotplex.waf._re2 import Pattern, compile_pattern, error
from hotplex.waf.model import ACTIONS, LEVELS, Rule

__all__ = [
    "CompiledRule",
    "compile_pattern",
    "compile_rules",
    "load_rule_file",
    "parse_rules",
    "resolve_overrides",
    "shipped_rules",
]

_FIELDS = {
    "id",
    "category",
    "level",
    "action",
    "description",
    "patterns",
    "requires",
    "kind",
    "scope",
    "access",
    "verbs",
}
_MACRO = re.compile(r"\{\{([A-Za-z_][\w-]*)\}\}")
_ID = re.compile(r"[A-Za-z0-9][\w.:-]*")
_KINDS = ("command", "path", "url")
_SCOPES = ("command", "script")
_ACCESS = ("read", "write", "any")


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    patterns: tuple[Pattern, ...]
    requires: tuple[Pattern, ...]

    def search(self, text: str | bytes) -> tuple[int, int] | None:
        """The span of the first pattern that matches, if every ``requires`` matches too."""
        for pattern in self.patterns:
            m = pattern.search(text)
            if m is not None:
                if all(r.search(text) is not None for r in self.requires):
                    return (int(m.start()), int(m.end()))
                return None
        return None


def _expand_macros(pattern: str, macros: Mapping[str, str], where: str, source: str) -> str:
    for _ in range(8):
        missing = [m for m in _MACRO.findall(pattern) if m not in macros]
        if missing:
            raise ConfigError(
                f"{source}: {where}: unknown macro {{{{{missing[0]}}}}}", source=source
            )
        new = _MACRO.sub(lambda m: macros[m.group(1)], pattern)
        if new == pattern:
            return new
        pattern = new
    raise ConfigError(f"{source}: {where}: macros nest too deeply", source=source)


def _strings(value: Any, where: str, source: str, *, required: bool) -> tuple[str, ...]:
    if value is None and not required:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{source}: {where}: expected a list of non-empty strings", source=source)
    if required and not value:
        raise ConfigError(f"{source}: {where}: at least one pattern is needed", source=source)
    return tuple(value)


def _choice(
    entry: Mapping[str, Any],
    key: str,
    choices: Sequence[str],
    default: str | None,
    where: str,
    source: str,
) -> str:
    value = entry.get(key, default)
    if value not in choices:
        raise ConfigError(
            f"{source}: {where}: {key} must be one of {', '.join(choices)}, not {value!r}",
            source=source,
            path=f"{where}.{key}",
        )
    return cast(str, value)


def parse_rules(
    data: Any, source: str, *, macros: Mapping[str, str] | None = None
) -> tuple[list[Rule], dict[str, str]]:
    """Validate a loaded rule document; returns its rules and its macros (merged with
    ``macros``)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with a 'rules' list", source=source)
    unknown = set(data) - {"rules", "macros", "version"}
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key {sorted(unknown)[0]!r}", source=source)
    merged = dict(macros or {})
    raw_macros = data.get("macros") or {}
    if not isinstance(raw_macros, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw_macros.items()
    ):
        raise ConfigError(f"{source}: macros must map names to strings", source=source)
    merged.update(raw_macros)
    entries = data.get("rules")
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: 'rules' must be a list", source=source, path="rules")
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        rules.append(_rule(entry, index, source, merged, seen))
    return rules, merged


def _rule(entry: Any, index: int, source: str, macros: Mapping[str, str], seen: set[str]) -> Rule:
    where = f"rules[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{source}: {where}: expected a mapping", source=source, path=where)
    rule_id = entry.get("id")
    if not isinstance(rule_id, str) or not _ID.fullmatch(rule_id):
        raise ConfigError(
            f"{source}: {where}: every rule needs an id (letters, digits, . _ -)",
            source=source,
            path=f"{where}.id",
        )
    where = f"rule {rule_id!r}"
    if rule_id in seen:
        raise ConfigError(f"{source}: {where} is defined twice", source=source)
    seen.add(rule_id)
    unknown = set(entry) - _FIELDS
    if unknown:
        raise ConfigError(
            f"{source}: {where}: unknown field {sorted(unknown)[0]!r}",
            source=source,
            path=f"rules[{index}]",
        )
    for key in ("category", "description"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise ConfigError(
                f"{source}: {where}: {key} is required", source=source, path=f"rules[{index}].{key}"
            )
    level = _choice(entry, "level", LEVELS, None, where, source)
    action = _choice(entry, "action", ACTIONS, None, where, source)
    kind = _choice(entry, "kind", _KINDS, "command", where, source)
    scope = _choice(entry, "scope", _SCOPES, "command", where, source)
    access = _choice(entry, "access", _ACCESS, "any", where, source)
    patterns = _strings(entry.get("patterns"), f"{where}: patterns", source, required=True)
    requires = _strings(entry.get("requires"), f"{where}: requires", source, required=False)
    verbs = _strings(entry.get("verbs"), f"{where}: verbs", source, required=False)
    expanded = [_expand_macros(p, macros, where, source) for p in patterns]
    needed = [_expand_macros(p, macros, where, source) for p in requires]
    prefix = "(?m)" if scope == "script" else ""
    for pattern in (*expanded, *needed):
        try:
            compile_pattern(prefix + pattern)
        except error as exc:
            raise ConfigError(
                f"{source}: {where}: invalid pattern {pattern!r}: {exc}",
                source=source,
                path=f"rules[{index}].patterns",
            ) from None
    return Rule(
        id=rule_id,
        category=entry["category"].strip(),
        level=cast(Any, level),
        action=cast(Any, action),
        description=" ".join(entry["description"].split()),
        patterns=tuple(prefix + p for p in expanded),
        requires=tuple(prefix + p for p in needed),
        kind=cast(Any, kind),
        scope=cast(Any, scope),
        access=cast(Any, access),
        verbs=tuple(v.lower() for v in verbs),
        source=source,
    )


def _load_yaml(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}", source=source) from None


@functools.lru_cache(maxsize=1)
def _shipped() -> tuple[tuple[Rule, ...], tuple[tuple[str, str], ...]]:
    resource = config_file("waf.yaml")
    rules, macros = parse_rules(_load_yaml(resource.read_text("utf-8"), "waf.yaml"), "waf.yaml")
    return tuple(rules), tuple(macros.items())


def shipped_rules() -> tuple[Rule, ...]:
    """The default rules in the shipped ``configs/waf.yaml``."""
    return _shipped()[0]


def load_rule_file(path: Path | str) -> list[Rule]:
    """Load a user rule file (the shipped macros are available in it)."""
    source = str(path)
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise ConfigError(
            f"{source}: cannot read rule file: {exc.strerror or exc}", source=source
        ) from None
    rules, _ = parse_rules(_load_yaml(text, source), source, macros=dict(_shipped()[1]))
    return rules


def compile_rules(rules: Iterable[Rule]) -> list[CompiledRule]:
    """Compile rules (rules built in code are validated here; ids must be unique)."""
    compiled: list[CompiledRule] = []
    seen: dict[str, str] = {}
    for rule in rules:
        if rule.id in seen:
            raise ConfigError(
                f"rule {rule.id!r} is defined in {seen[rule.id]} and in {rule.source}; "
                "change a shipped rule with security.waf.overrides, or pick a new id",
                source=rule.source,
            )
        seen[rule.id] = rule.source
        if rule.level not in LEVELS or rule.action not in ACTIONS or not rule.patterns:
            raise ConfigError(
                f"{rule.source}: rule {rule.id!r}: needs a level, an action and patterns",
                source=rule.source,
            )
        try:
            patterns = tuple(compile_pattern(p) for p in rule.patterns)
            requires = tuple(compile_pattern(p) for p in rule.requires)
        except error as exc:
            raise ConfigError(
                f"{rule.source}: rule {rule.id!r}: invalid pattern: {exc}", source=rule.source
            ) from None
        compiled.append(CompiledRule(rule, patterns, requires))
    return compiled


def resolve_overrides(rules: Sequence[Rule], overrides: Mapping[str, str]) -> dict[str, str]:
    """Rule id -> action after overrides (a rule id beats its category; ``off`` drops it)."""
    ids = {r.id for r in rules}
    categories = {r.category for r in rules}
    for key, value in overrides.items():
        where = f"security.waf.overrides.{key}"
        if value not in (*ACTIONS, "off"):
            raise ConfigError(
                f"{where}: expected block, ask, warn or off, not {value!r}", path=where
            )
        if key not in ids and key not in categories:
            raise ConfigError(f"{where}: no rule or category is called {key!r}", path=where)
    return {r.id: overrides.get(r.id, overrides.get(r.category, r.action)) for r in rules}
