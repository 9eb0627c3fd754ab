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
2. the lead-in clause's verb: a verb of asking, explaining, searching, editing or defending
   (``explain``, ``grep``, ``review``, ``detect``, ``replace``...) lets it through; an
   imperative verb (``add``, ``install``, ``delete``, ``use``...) is an order unless the
   clause talks about defences (hook, regex, rule, test, detector...); a leading negation
   (``never``, ``don't``) lets it through;
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

import re
from dataclasses import dataclass

from hotplex.waf._text import word_set

__all__ = ["Anchor", "classify"]

WINDOW = 600
_WORD = re.compile(r"[a-z0-9][a-z0-9'\-]*|[:,;!?.]|\x00+")
_BOUNDARY = re.compile(r"[.!?](?=\s|$)|\n")
_NOT_PROSE = re.compile(r"\S*(?:://|[/@\\]|\.[a-z]{2,}\.)\S*")
_CLAUSE = re.compile(r"[,;]|:(?=\s|$)|\s-{1,2}\s|\s(?:and|then|but|also)\s")

EXEC = word_set("run execute exec launch invoke type enter paste try perform trigger")
ORDER = EXEC | word_set(
    "add install delete remove wipe erase format clean cleanup nuke destroy kill set setup "
    "create make open start spawn connect send upload post copy dump print show cat read "
    "display get grab give reset drop flush reboot restart shutdown use do put append schedule "
    "enable configure update deploy build chmod chown mount download fetch pipe execute fix "
    "free empty purge overwrite replace-with apply go"
)
# verbs that edit text: with a named object ("remove the line `...`") they quote it
EDIT = word_set(
    "remove delete drop strip fix change update replace rewrite rename comment edit move "
    "reformat wrap quote escape correct adjust tweak modify shorten simplify"
)
MENTION = {
    "explanation": word_set(
        "explain explains explaining describe define tell teach learn understand know summarize "
        "summarise clarify compare interpret annotate document comment discuss elaborate "
        "outline walk break"
    ),
    "quoted": word_set(
        "grep rg search find locate count list quote highlight underline replace rename rewrite "
        "refactor translate convert port edit change escape parse extract tokenize tokenise "
        "match format-check"
    ),
    "defensive": word_set(
        "detect block reject refuse prevent forbid deny flag catch guard sanitize sanitise lint "
        "review audit scan harden mitigate protect alert monitor validate whitelist blacklist "
        "allowlist denylist"
    ),
}
QUOTED_WORDS = word_set(
    "grep rg search searching find finding locate count occurrences occurrence contain contains "
    "containing contained mention mentions mentioned reference references logs logged "
    "logging output printed prints says said message messages commit commits string strings "
    "literal quote quoted snippet appears appeared found saw seen posted wrote written "
    "transcript changelog readme ticket issue error errors trace traceback excerpt history "
    "documented docs documentation comment comments example examples named called titled"
)
EXPLAIN_WORDS = word_set(
    "explain explanation meaning means mean dangerous risky harmful destructive unsafe "
    "malicious harmless safe why difference compare example purpose understand eli5 describe"
)
INTERROGATIVE = word_set(
    "what what's whats why how which when where who whose whom is are does do did can could "
    "should would will was were has have isn't doesn't don't"
)
NEGATION = word_set(
    "don't dont never not no without avoid shouldn't shouldnt mustn't cannot can't won't "
    "wouldn't didn't doesn't refrain nor stop instead rather"
)
FILLER = word_set(
    "this that the following command commands script line lines snippet code please now again "
    "for me us just quickly immediately it with sudo as root on my our server machine box here "
    "below above these those them one exact same everything all files file disk drive system "
    "directory folder data repo using via by running executing calling a an in of to from : , - "
    "right away asap real quick yourself"
)
PREFIX = word_set(
    "please pls now then also just so and ok okay hey hi first next finally quickly kindly can "
    "could would will you u i we want need like let's lets let us me go ahead to and, i'd "
    "you'll must should gonna wanna"
)
SUBJECTS = word_set(
    "i you we they he she one someone somebody anyone anybody people user users attacker "
    "attackers hacker hackers admin"
)
ALWAYS_HYPOTHETICAL = word_set(
    "someone somebody anyone anybody attacker attackers hacker hackers people"
)
CONDITIONAL = word_set("if when whenever once suppose supposing imagine should why what how")
SAFE_ADJ = word_set(
    "safe ok okay dangerous risky wise fine bad good harmful possible easy hard best way how "
    "learn explain understand know okay"
)
ADVERBS = word_set("accidentally mistakenly ever just actually really still even")
ANAPHORA_OBJECTS = word_set("it this that them these those above below following")
# a few cue words in other languages (checked as substrings after folding)
FOREIGN_QUESTION = (
    "吗",
    "嗎",
    "什么",
    "什麼",
    "为什么",
    "為什麼",
    "怎么",
    "怎麼",
    "如何",
    "是否",
    "なぜ",
    "何が",
    "ですか",
    "でしょうか",
    "ますか",
    "왜",
    "무엇",
    "뭐",
    "почему",
    "что делает",
    "что будет",
    "зачем",
    "qué hace",
    "por qué",
    "cómo",
    "was macht",
    "warum",
    "wieso",
    "pourquoi",
    "que fait",
    "qu'est-ce",
    "perché",
    "cosa fa",
    "o que faz",
    "por que",
)
FOREIGN_EXPLAIN = (
    "解释",
    "解釋",
    "说明",
    "說明",
    "意思",
    "含义",
    "作用",
    "危险",
    "危險",
    "説明",
    "意味",
    "危険",
    "설명",
    "위험",
    "объясни",
    "опасн",
    "explica",
    "peligros",
    "erklär",
    "gefährlich",
    "explique",
    "dangereu",
    "spiega",
    "pericolos",
    "perigos",
)
FOREIGN_ORDER = (
    "运行",
    "執行",
    "执行",
    "删除",
    "刪除",
    "実行",
    "して",
    "실행",
    "ejecuta",
    "führe aus",
    "exécute",
    "lance",
    "запусти",
    "выполни",
    "esegui",
)
DATA_LANGS = word_set(
    "log logs text txt plaintext plain output out stdout stderr diff patch json csv xml html "
    "markdown md rst console-output trace"
)


@dataclass(frozen=True, slots=True)
class Anchor:
    """Where the command sits in the prompt: ``start``/``end`` of the code (with its
    backticks) or of a ``bare`` command in prose, and the language of a fenced block."""

    start: int
    end: int
    fence: bool = False
    lang: str = ""
    bare: bool = False


def _words(text: str) -> list[str]:
    return _WORD.findall(_plain(text))


def _plain(text: str) -> str:
    """Lower-cased prose with URLs, paths and addresses removed (their words are no cue)."""
    return _NOT_PROSE.sub(" ", text.lower())


def _last_sentence(text: str) -> str:
    text = text.rstrip()
    cut = 0
    for m in _BOUNDARY.finditer(text):
        if m.end() < len(text):
            cut = m.end()
    return text[cut:]


def _first_sentence(text: str) -> str:
    m = _BOUNDARY.search(text)
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


_STOPS = frozenset({",", ";", ":", ".", "?", "!", "and", "but", "then", "so"})
_DEFENSIVE = re.compile(
    r"\b(?:detect|reject|refus|prevent|forbid|den(?:y|ies|ied|ial|ylist)|flag(?:s|ged|ging)?\b"
    r"|catch|guard|saniti[sz]|lint|filter|scan|alert|warn|harden|protect|monitor|audit|review"
    r"|polic(?:y|ies)|rules?\b|regex|pattern|hooks?\b|pre-?commit|waf\b|signature|allowlist"
    r"|blocklist|blacklist|whitelist|yara|semgrep|falco|siem|corpus|fixture|safeguard|validat"
    r"|mitigat|quarantin|block(?:s|ed|ing)?\b(?! device)"
    r"|(?:unit|integration|regression|e2e|smoke|security)[ -]tests?|test ?(?:case|suite)s?"
    r"|tests? (?:that|for|which|to|asserting|checking)|(?:a|the|new|add|write|another) tests?\b"
    r"|checks? (?:that|for|which|to)\b|fails? (?:on|if|when|for)\b|exits? non-?zero"
    r"|errors? (?:on|if|when)\b)"
)
# the command is the subject of the sentence ("`rm -rf /` is in the old Makefile")
_SUBJECT = re.compile(
    r"^\s*(?:is|was|are|were|isn't|wasn't|appears|appeared|seems|seemed|looks|looked|does|did|"
    r"doesn't|didn't|will|would|won't|can|could|can't|should|might|may|has|had|have|means|"
    r"meant|causes|caused|deletes|deleted|removes|removed|wipes|wiped|destroys|destroyed|"
    r"erases|erased|freed|frees|broke|breaks|lives|sits|shows|showed|comes|came|belongs|"
    r"gets|got|makes|made|keeps|kept|takes|took|returns|returned|fails|failed|printed|prints)\b"
)
# a noun phrase naming the code ("the line `...`", "this command `...`")
_NAMING = re.compile(
    r"\b(?:the|this|that|a|an|our|your|their|his|her|its)\s+(?:\w+\s+)?(?:command|line|snippet|"
    r"string|call|code|one-liner|oneliner|invocation|bit|part|example|entry|statement|pattern|"
    r"text|step|instruction)s?[\s:,]*$"
)
# "the log", "a log line" (but not "log in")
_LOG = re.compile(
    r"\b(?:the|this|that|a|our|my|its|following|build|ci|server|error)\s+log\b"
    r"|\blog\s+(?:line|file|output|entry|excerpt|message)s?\b"
)
# a story about something that was run ("my colleague ran ... by mistake")
_NARRATIVE = re.compile(
    r"\b(?:ran|executed|typed|pasted|accidentally|mistakenly|by mistake|yesterday|"
    r"last (?:week|night|time|month)|earlier today|after running|i saw|we saw|"
    r"(?:my|our) (?:colleague|coworker|teammate|intern|friend|boss|admin|predecessor))\b"
)
# writing about a command rather than running it
_WRITING = re.compile(
    r"\b(?:explanation|explain|describ|description|summar|docs?\b|documentation|postmortem|"
    r"post-mortem|write-?up|blog|article|sentence|paragraph|tutorial|wiki|onboarding|slides?\b|"
    r"lesson|course|training|changelog|readme|release notes|cheat ?sheet|glossary|faq\b|"
    r"quiz|exam|interview question)"
)
_EXAMPLE = re.compile(
    r"(?:\blike|such as|e\.g\.?|for example|for instance|including|as in|similar to|i\.e\.?)"
    r"[\s:,]*$"
)


def _guarded(words: list[str], k: int) -> bool:
    """True when the verb at ``k`` is negated (a negation earlier in its clause) or
    hypothetical (``if I run``, ``someone runs``, ``is it safe to run``, ``how to run``)."""
    j = k - 1
    while j >= 0 and words[j] not in _STOPS:
        if words[j] in NEGATION:
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
    return [c for c in _CLAUSE.split(text) if c.replace("\x00", "").strip(" \t.!?")]


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
    if verb in NEGATION or (verb == "do" and words[i + 1 : i + 2] in (["not"], ["never"])):
        return "negated"
    for reason, verbs in MENTION.items():
        if verb in verbs:
            return reason
    if verb in EDIT and _NAMING.search(lead.lower().replace("\x00", " ").rstrip()):
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
        if _DEFENSIVE.search(_plain(sentence)):
            return "defensive"
        if _WRITING.search(_plain(sentence)):
            return "explanation"
        if any(w in EXEC and _guarded(words, k) for k, w in enumerate(words) if k > i):
            return "negated"
        return "order"
    return None


def _cue_words(clause: str, lead: str) -> str | None:
    lowered = _plain(lead)
    if _EXAMPLE.search(lowered.replace("\x00", " ").rstrip()):
        return "quoted"
    if _DEFENSIVE.search(lowered):
        return "defensive"
    if set(_words(clause)) & QUOTED_WORDS or _LOG.search(_plain(clause)):
        return "quoted"
    words = _words(lead)
    for k, word in enumerate(words):
        if word in EXEC and _guarded(words, k):
            j = k - 1
            while j >= 0 and words[j] not in _STOPS:
                if words[j] in NEGATION:
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
    if _direct_order(lead):
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
    if reason is None and _WRITING.search(_plain(lead)):
        reason = "explanation"
    if reason is None and _NARRATIVE.search(_plain(f"{lead} {trail}")):
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
    if not commanded and not anchor.bare and _SUBJECT.match(trail.lower().replace("\x00", " ")):
        return "quoted"
    return "order"
