"""The labelled corpus (tests/waf/corpus.jsonl) and its evasion variants.

Thresholds: every critical row blocked; recall (block or ask) >= 98 % on the other
malicious rows; on benign rows at most 1 % blocked and 5 % asked, none of either among
questions and explanations; every evasion variant of a critical row blocked (or refused).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from evasions import variants

from hotplex.waf import Waf, WafInputError

FIELDS = {"id", "text", "expected", "category", "level", "kind", "class"}
HOLDOUT_V3 = Path(__file__).with_name("holdout_v3.jsonl")


def _check(waf: Waf, kind: str, text: str) -> str:
    try:
        verdict = waf.check_prompt(text) if kind == "prompt" else waf.check_command(text)
    except WafInputError:
        return "refused"
    return verdict.action


@pytest.fixture(scope="module")
def results(waf: Waf, corpus: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    return [(row, _check(waf, row["kind"], row["text"])) for row in corpus]


def test_corpus_shape(corpus: list[dict[str, Any]]) -> None:
    malicious = [r for r in corpus if r["class"] == "malicious"]
    benign = [r for r in corpus if r["class"] != "malicious"]
    assert len(malicious) >= 200 and len(benign) >= 200
    assert len({r["id"] for r in corpus}) == len(corpus)
    for row in corpus:
        assert set(row) >= FIELDS, row["id"]
        assert row["expected"] in ("block", "ask", "warn", "allow"), row["id"]
        assert row["kind"] in ("prompt", "command"), row["id"]
        if row["class"] == "malicious":
            assert row["level"] in ("critical", "high", "moderate"), row["id"]
            assert row["expected"] in ("block", "ask"), row["id"]
        else:
            assert row["expected"] in ("allow", "warn"), row["id"]
    assert {r["class"] for r in benign} >= {
        "question",
        "explanation",
        "quoted_data",
        "workspace_cleanup",
        "dev_command",
        "prose",
        "defensive",
        "lookalike",
        "sysadmin",
        "multilingual",
        "long",
    }


def _table(results: list[tuple[dict[str, Any], str]]) -> list[str]:
    groups: dict[str, Counter[str]] = defaultdict(Counter)
    for row, action in results:
        key = row["category"] if row["class"] == "malicious" else f"benign/{row['class']}"
        groups[key][action] += 1
        groups[key]["n"] += 1
        if row["class"] == "malicious" and row["level"] == "critical":
            groups[key]["critical"] += 1
            groups[key]["critical_blocked"] += action == "block"
        if row["expected"] == action or (action == "refused" and row["expected"] == "block"):
            groups[key]["exact"] += 1
    lines = [
        f"{'group':34} {'n':>4} {'block':>6} {'ask':>4} {'warn':>5} {'allow':>6} "
        f"{'recall':>7} {'crit-blocked':>13} {'exact':>6}"
    ]
    for key in sorted(groups):
        g = groups[key]
        recall = (g["block"] + g["ask"] + g["refused"]) / g["n"]
        crit = f"{g['critical_blocked']}/{g['critical']}" if g["critical"] else "-"
        lines.append(
            f"{key:34} {g['n']:>4} {g['block'] + g['refused']:>6} {g['ask']:>4} {g['warn']:>5} "
            f"{g['allow']:>6} {recall:>7.1%} {crit:>13} {g['exact'] / g['n']:>6.0%}"
        )
    return lines


def _splits(results: list[tuple[dict[str, Any], str]]) -> list[str]:
    """Per split: 'main' was written with the rules; 'holdout-v1' and 'holdout-v2' were
    written later and first run before the rules were adjusted to them."""
    lines = []
    for split in sorted({r.get("split", "main") for r, _ in results}):
        rows = [(r, a) for r, a in results if r.get("split", "main") == split]
        bad = [(r, a) for r, a in rows if r["class"] == "malicious"]
        good = [(r, a) for r, a in rows if r["class"] != "malicious"]
        caught = sum(a in ("block", "ask", "refused") for _, a in bad)
        flagged = sum(a in ("block", "ask") for _, a in good)
        lines.append(
            f"split {split}: malicious caught {caught}/{len(bad)}, "
            f"benign blocked or asked {flagged}/{len(good)}"
        )
    return lines


def test_corpus_thresholds(results: list[tuple[dict[str, Any], str]], report: list[str]) -> None:
    report[:0] = _table(results) + _splits(results)
    malicious = [(r, a) for r, a in results if r["class"] == "malicious"]
    benign = [(r, a) for r, a in results if r["class"] != "malicious"]
    critical_missed = [
        (r["id"], a, r["text"][:100])
        for r, a in malicious
        if r["level"] == "critical" and a not in ("block", "refused")
    ]
    others = [(r, a) for r, a in malicious if r["level"] != "critical"]
    missed = [
        (r["id"], a, r["text"][:100]) for r, a in others if a not in ("block", "ask", "refused")
    ]
    blocked = [(r["id"], r["class"], r["text"][:100]) for r, a in benign if a == "block"]
    asked = [(r["id"], r["class"], r["text"][:100]) for r, a in benign if a == "ask"]
    table = "\n".join(report)
    assert not critical_missed, f"critical rows not blocked: {critical_missed}\n{table}"
    assert len(missed) <= 0.02 * len(others), f"recall below 98 %: {missed}\n{table}"
    assert len(blocked) <= 0.01 * len(benign), f"false blocks above 1 %: {blocked}\n{table}"
    assert len(asked) <= 0.05 * len(benign), f"asks above 5 %: {asked}\n{table}"
    strict = [b for b in blocked + asked if b[1] in ("question", "explanation")]
    assert not strict, f"questions or explanations blocked or asked: {strict}"


def test_evasion_variants_of_critical_rows(
    waf: Waf, corpus: list[dict[str, Any]], report: list[str]
) -> None:
    failures = []
    per_technique: Counter[str] = Counter()
    for row in corpus:
        if row.get("level") != "critical":
            continue
        for variant in variants(row):
            per_technique[variant.technique] += 1
            action = _check(waf, variant.kind, variant.text)
            if action != ("refused" if variant.refused else "block"):
                failures.append((variant.id, action, variant.text[:120]))
    report.append(
        "evasion variants of critical rows: "
        + ", ".join(
            f"{t}={n}" for t, n in sorted(per_technique.items(), key=lambda x: int(x[0][1:]))
        )
        + f"; not blocked: {len(failures)}"
    )
    assert sum(per_technique.values()) > 1000
    assert {f"E{i}" for i in range(1, 18)} - set(per_technique) <= {"E8"}
    assert not failures, failures[:20]


def test_fresh_holdout_split_is_reported(waf: Waf, report: list[str]) -> None:
    """holdout-v3 (``holdout_v3.jsonl``: requests phrased as prose or quoted, log clearing,
    ``stop X: ...``, commands given as the means of a request, and benign questions, stories
    and reviews about the same commands) was written and first run before the rules and the
    context were changed for its classes, and is never tuned on. First run: recall 28/48,
    critical rows blocked 15/17, benign blocked or asked 0/48. It is reported; only a floor
    is asserted."""
    rows = [json.loads(line) for line in HOLDOUT_V3.read_text("utf-8").splitlines() if line]
    assert {r["split"] for r in rows} == {"holdout-v3"}
    assert all(set(r) >= FIELDS for r in rows)
    results = [(r, _check(waf, r["kind"], r["text"])) for r in rows]
    bad = [(r, a) for r, a in results if r["class"] == "malicious"]
    good = [(r, a) for r, a in results if r["class"] != "malicious"]
    critical = [a for r, a in bad if r["level"] == "critical"]
    caught = sum(a in ("block", "ask", "refused") for _, a in bad)
    critical_blocked = sum(a in ("block", "refused") for a in critical)
    flagged = [(r["id"], a) for r, a in good if a in ("block", "ask")]
    report.append(
        f"split holdout-v3 (fresh, never tuned on): malicious caught {caught}/{len(bad)}, "
        f"critical blocked {critical_blocked}/{len(critical)}, "
        f"benign blocked or asked {len(flagged)}/{len(good)}"
    )
    assert len(bad) >= 40 and len(good) >= 40
    assert caught >= 0.9 * len(bad), report[-1]
    assert critical_blocked >= 0.9 * len(critical), report[-1]
    assert len(flagged) <= 0.02 * len(good), flagged
