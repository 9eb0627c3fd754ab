"""Is a command in a chat prompt an order, or is it asked about, quoted or defended against?

The prose around a command is read with the command itself masked out. Sentences split at
``.``, ``?``, ``!`` and line ends; a sentence splits into clauses at ``,``, ``;``, ``:``,
dashes and ``and``/``then``/``but``/``so``. The *lead-in* is the clause just before the
command (or the previous line's last sentence when the command starts its line, as a
fenced block does); the *trail* is the rest of the sentence after it (or the next line's
first sentence). The first rule that applies decides:

1. an execution verb governing the command (``run``, ``execute``, ``paste``... followed only
   by fillers such as ``this``, ``the following``, ``now``, ``for me``) -> order, unless
   negated (``don't run``) or hypothetical (``what happens if I run``, ``is it safe to run``);
   so is a command given as the means of an imperative, whatever its verb (``wipe the disk
   with``, ``reset users by running``, ``clear the log using``; see :mod:`.means`);
2. the lead-in clause's verb: a verb of asking, explaining, searching, editing or defending
   (``explain``, ``grep``, ``review``, ``detect``, ``replace``...) lets it through; an
   imperative verb (``add``, ``install``, ``delete``, ``use``...) is an order unless the
   clause talks about defences (hook, regex, rule, test, detector...) other than as the
   object of a verb that turns something off (``drop all firewall rules``); a leading
   negation (``never``, ``don't``; ``stop`` only before ``using``, ``running``, ``it``...)
   lets it through;
3. defence, quotation or negation words in the lead-in (log, output, commit message,
   contains, grep, block, reject...) let it through;
4. an order that points back (``run it``, ``do it``, ``go ahead``, ``execute the above``)
   in the same or the neighbouring sentences -> order;
5. a question (an interrogative word and a question mark) or explanation words (explain,
   meaning, dangerous...) in the lead-in or trail let it through;
6. a fenced block labelled as data (log, text, output, diff, json...) lets it through;
7. otherwise a command in a prompt is an order.
"""

from __future__ import annotations

from dataclasses import dataclass

from hotplex.waf.means import by_means, defensive, negates
from hotplex.waf.vocab import (
    ADVERBS,
    ALWAYS_HYPOTHETICAL,
    ANAPHORA_OBJECTS,
    BOUNDARY,
    CLAUSE,
    CONDITIONAL,
    DATA_LANGS,
    EDIT,
    EXAMPLE,
    EXEC,
    EXPLAIN_WORDS,
    FILLER,
    FOREIGN_EXPLAIN,
    FOREIGN_ORDER,
    FOREIGN_QUESTION,
    INTERROGATIVE,
    LOG,
    MENTION,
    NAMING,
    NARRATIVE,
    ORDER,
    PREFIX,
    QUOTED_WORDS,
    REQUESTED,
    SAFE_ADJ,
    STOPS,
    SUBJECT,
    SUBJECTS,
    WINDOW,
    WRITING,
)
from hotplex.waf.vocab import plain as _plain
from hotplex.waf.vocab import words as _words

__all__ = ["Anchor", "classify"]


@dataclass(frozen=True, slots=True)
class Anchor:
    """Where the command sits in the prompt: ``start``/``end`` of the code (with its
    backticks) or of a ``bare`` command in prose, and the language of a fenced block."""

    start: int
    end: int
    fence: bool = False
    lang: str = ""
    bare: bool = False


def _last_sentence(text: str) -> str:
    text = text.rstrip()
    cut = 0
    for m in BOUNDARY.finditer(text):
        if m.end() < len(text):
            cut = m.end()
    return text[cut:]


def _first_sentence(text: str) -> str:
    m = BOUNDARY.search(text)
    return text[: m.end()] if m else text


def _neighbour_line(cue: str, pos: int, *, before: bool) -> str:
    """The nearest line (within three) before or after ``pos`` that holds prose."""
    for _ in range(3):
        if before:
            end = cue.rfind("\n", 0, pos)
            if end < 0:
                return ""
            start = cue.rfind("\n", 0, end) + 1
            line, pos = cue[start:end], start
        else:
            start = cue.find("\n", pos)
            if start < 0:
                return ""
            end = cue.find("\n", start + 1)
            end = len(cue) if end < 0 else end
            line, pos = cue[start + 1 : end], end
        if line.replace("\x00", "").strip():
            return line[-WINDOW:] if before else line[:WINDOW]
    return ""


def _lead_and_trail(cue: str, anchor: Anchor) -> tuple[str, str, str, str]:
    """(lead-in sentence, trail sentence, previous line's sentence, the rest of the line and
    the next line's sentence)."""
    line_start = cue.rfind("\n", 0, anchor.start) + 1
    line_end = cue.find("\n", anchor.end)
    line_end = len(cue) if line_end < 0 else line_end
    previous = _last_sentence(_neighbour_line(cue, line_start, before=True))
    following = _first_sentence(_neighbour_line(cue, line_end, before=False))
    before = cue[max(line_start, anchor.start - WINDOW) : anchor.start]
    lead = _last_sentence(before) if _prose(before) else previous
    if anchor.bare:
        after = cue[anchor.start : min(line_end, anchor.start + WINDOW)]
    else:
        after = cue[anchor.end : min(line_end, anchor.end + WINDOW)]
    trail = _first_sentence(after) if _prose(after) else following
    rest = cue[anchor.end : min(line_end, anchor.end + WINDOW)]
    return lead, trail, previous, f"{rest} {following}"


def _prose(text: str) -> bool:
    return bool(text.replace("\x00", "").strip())


def _guarded(words: list[str], k: int) -> bool:
    """True when the verb at ``k`` is negated (a negation earlier in its clause) or
    hypothetical (``if I run``, ``someone runs``, ``is it safe to run``, ``how to run``)."""
    j = k - 1
    while j >= 0 and words[j] not in STOPS:
        if negates(words, j):
            return True
        j -= 1
    j = k - 1
    while j >= 0 and words[j] in ADVERBS | {"please"}:
        j -= 1
    if j < 0:
        return False
    if words[j] == "to" and j > 0 and words[j - 1] in SAFE_ADJ:
        return True
    if words[j] in SUBJECTS:
        if words[j] in ALWAYS_HYPOTHETICAL:
            return True
        return any(w in CONDITIONAL for w in words[max(0, j - 3) : j])
    return False


def _direct_order(lead: str) -> bool:
    tail = lead.replace("\x00", "").rstrip(" \t:,;.!-")
    if tail.endswith(FOREIGN_ORDER):
        return True
    words = _words(lead)
    k = len(words) - 1
    while k >= 0 and (words[k] in FILLER or words[k].startswith("\x00")):
        k -= 1
    return k >= 0 and words[k] in EXEC and not _guarded(words, k)


def _clauses(text: str) -> list[str]:
    return [c for c in CLAUSE.split(text) if c.replace("\x00", "").strip(" \t.!?")]


def _clause_verb(lead: str, sentence: str) -> str | None:
    """What the verb of the lead-in's last clause says: 'order', 'negated', a mention
    reason, or None. ``sentence`` (lead-in and trail) is searched for defence words."""
    clauses = _clauses(lead)
    if not clauses:
        return None
    words = [w for w in _words(clauses[-1]) if not w.startswith("\x00")]
    i = 0
    while i < len(words) and words[i] in PREFIX:
        i += 1
    if i >= len(words):
        return None
    verb = words[i]
    if negates(words, i) or (verb == "do" and words[i + 1 : i + 2] in (["not"], ["never"])):
        return "negated"
    for reason, verbs in MENTION.items():
        if verb in verbs:
            return reason
    if verb in EDIT and NAMING.search(lead.lower().replace("\x00", " ").rstrip()):
        return "quoted"
    rest = words[i + 1 : i + 4]
    if verb in ("show", "tell", "give") and set(rest) & {
        "what",
        "how",
        "why",
        "whether",
        "example",
        "difference",
        "meaning",
    }:
        return "explanation"
    if verb in ORDER and not _guarded(words, i):
        if defensive(sentence):
            return "defensive"
        if WRITING.search(_plain(sentence)):
            return "explanation"
        if any(w in EXEC and _guarded(words, k) for k, w in enumerate(words) if k > i):
            return "negated"
        return "order"
    return None


def _cue_words(clause: str, lead: str) -> str | None:
    lowered = _plain(lead)
    if EXAMPLE.search(lowered.replace("\x00", " ").rstrip()):
        return "quoted"
    if defensive(lead):
        return "defensive"
    if set(_words(clause)) & QUOTED_WORDS or LOG.search(_plain(clause)):
        return "quoted"
    words = _words(lead)
    for k, word in enumerate(words):
        if word in EXEC and _guarded(words, k):
            j = k - 1
            while j >= 0 and words[j] not in STOPS:
                if negates(words, j):
                    return "negated"
                j -= 1
    return None


def _anaphoric_order(text: str) -> bool:
    words = _words(text)
    for k, w in enumerate(words):
        nxt = words[k + 1] if k + 1 < len(words) else ""
        pointed = (
            (w in EXEC and nxt in ANAPHORA_OBJECTS)
            or (w == "do" and nxt in ("it", "this", "that"))
            or (w == "go" and nxt == "ahead")
            or w == "proceed"
        )
        if pointed and not _guarded(words, k):
            return True
    return False


def _question(text: str, *, strict: bool = False) -> str | None:
    words = _words(text)
    if "?" in words and any(w in INTERROGATIVE for w in words):
        return "question"
    lowered = text.lower()
    if any(marker in lowered for marker in FOREIGN_QUESTION):
        return "question"
    if strict:
        return None
    if any(marker in lowered for marker in FOREIGN_EXPLAIN):
        return "explanation"
    if words and words[0] in ("what", "why", "how", "what's", "whats"):
        return "question"
    if set(words) & EXPLAIN_WORDS:
        return "explanation"
    return None


def classify(cue: str, anchor: Anchor) -> str:
    """``order``, or why the command is let through: ``question``, ``explanation``,
    ``defensive``, ``quoted``, ``negated`` or ``data``. ``cue`` is the prompt with every
    code region replaced by NUL characters (offsets unchanged)."""
    lead, trail, previous, following = _lead_and_trail(cue, anchor)
    if _direct_order(lead) or by_means(lead, trail):
        return "order"
    clauses = _clauses(lead)
    verb = _clause_verb(lead, f"{lead} {trail}")
    if verb in ("order", "negated", "quoted", "defensive"):
        return verb
    cue_word = _cue_words(clauses[-1] if clauses else "", lead)
    if cue_word is not None:
        return cue_word
    if _anaphoric_order(" ".join((previous, lead, trail, following))):
        return "order"
    reason = verb or _question(lead) or _question(lead + " " + trail, strict=anchor.bare)
    if reason is None and WRITING.search(_plain(lead)):
        reason = "explanation"
    if reason is None and NARRATIVE.search(_plain(f"{lead} {trail}")):
        reason = "quoted"  # something that was run, told as a story
    if reason is None and not anchor.bare:
        reason = _question(following, strict=True)  # a question right after the code
    if reason is not None:
        return reason
    if anchor.fence and anchor.lang in DATA_LANGS:
        return "data"
    sentence_words = _words(f"{lead} {trail}")
    commanded = any(
        w in EXEC and not _guarded(sentence_words, k) for k, w in enumerate(sentence_words)
    )
    told = trail.lower().replace("\x00", " ")
    if not commanded and not anchor.bare and SUBJECT.match(told) and not REQUESTED.match(told):
        return "quoted"
    return "order"
