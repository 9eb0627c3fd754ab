"""The words the prompt context reads (see :mod:`hotplex.waf.context`): verbs of ordering,
asking, quoting and defending, negations, fillers, and the patterns of defences, stories,
writing and examples. Everything here is lower-case prose with paths and URLs removed
(:func:`plain`), split into :func:`words`."""

from __future__ import annotations

import re

from hotplex.waf._text import word_set

WINDOW = 600
WORD = re.compile(r"[a-z0-9][a-z0-9'\-]*|[:,;!?.]|\x00+")
BOUNDARY = re.compile(r"[.!?](?=\s|$)|\n")
NOT_PROSE = re.compile(r"\S*(?:://|[/@\\]|\.[a-z]{2,}\.)\S*")
CLAUSE = re.compile(r"[,;]|:(?=\s|$)|\s-{1,2}\s|\s(?:and|then|but|also)\s")

EXEC = word_set("run execute exec launch invoke type enter paste try perform trigger")
ORDER = EXEC | word_set(
    "add install delete remove wipe erase format clean cleanup nuke destroy kill set setup "
    "create make open start spawn connect send upload post copy dump print show cat read "
    "display get grab give reset drop flush reboot restart shutdown use do put append schedule "
    "enable configure update deploy build chmod chown mount download fetch pipe execute fix "
    "free empty purge overwrite replace-with apply go stop disable halt silence terminate "
    "truncate clear zero blank hide mask turn shut"
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

STOPS = frozenset({",", ";", ":", ".", "?", "!", "and", "but", "then", "so"})
DEFENSIVE = re.compile(
    r"\b(?:detect|reject|refus|prevent|forbid|den(?:y|ies|ied|ial|ylist)|flag(?:s|ged|ging)?\b"
    r"|catch|guard|saniti[sz]|lint|filter|scan|alert|warn|harden|protect|monitor"
    r"|audit(?!d\b|ctl\b)|review"
    r"|polic(?:y|ies)|rules?\b|regex|pattern|hooks?\b|pre-?commit|waf\b|signature|allowlist"
    r"|blocklist|blacklist|whitelist|yara|semgrep|falco|siem|corpus|fixture|safeguard|validat"
    r"|mitigat|quarantin|block(?:s|ed|ing)?\b(?! device)"
    r"|(?:unit|integration|regression|e2e|smoke|security)[ -]tests?|test ?(?:case|suite)s?"
    r"|tests? (?:that|for|which|to|asserting|checking)|(?:a|the|new|add|write|another) tests?\b"
    r"|checks? (?:that|for|which|to)\b|fails? (?:on|if|when|for)\b|exits? non-?zero"
    r"|errors? (?:on|if|when)\b)"
)
# the command is the subject of the sentence ("`rm -rf /` is in the old Makefile")
SUBJECT = re.compile(
    r"^\s*(?:is|was|are|were|isn't|wasn't|appears|appeared|seems|seemed|looks|looked|does|did|"
    r"doesn't|didn't|will|would|won't|can|could|can't|should|might|may|has|had|have|means|"
    r"meant|causes|caused|deletes|deleted|removes|removed|wipes|wiped|destroys|destroyed|"
    r"erases|erased|freed|frees|broke|breaks|lives|sits|shows|showed|comes|came|belongs|"
    r"gets|got|makes|made|keeps|kept|takes|took|returns|returned|fails|failed|printed|prints)\b"
)
# the command is what the writer asks for ("`...` is what I want done")
REQUESTED = re.compile(
    r"^\s*(?:is|'s)\s+(?:exactly\s+|just\s+)?what\s+(?:i|we)\s+(?:want|need|'d like|would like)\b"
)
# a noun phrase naming the code ("the line `...`", "this command `...`")
NAMING = re.compile(
    r"\b(?:the|this|that|a|an|our|your|their|his|her|its)\s+(?:\w+\s+)?(?:command|line|snippet|"
    r"string|call|code|one-liner|oneliner|invocation|bit|part|example|entry|statement|pattern|"
    r"text|step|instruction)s?[\s:,]*$"
)
# "the log", "a log line" (but not "log in")
LOG = re.compile(
    r"\b(?:the|this|that|a|our|my|its|following|build|ci|server|error)\s+log\b"
    r"|\blog\s+(?:line|file|output|entry|excerpt|message)s?\b"
)
# a story about something that was run ("my colleague ran ... by mistake")
NARRATIVE = re.compile(
    r"\b(?:ran|executed|typed|pasted|accidentally|mistakenly|by mistake|yesterday|"
    r"last (?:week|night|time|month)|earlier today|after running|i saw|we saw|"
    r"(?:my|our) (?:colleague|coworker|teammate|intern|friend|boss|admin|predecessor))\b"
)
# writing about a command rather than running it
WRITING = re.compile(
    r"\b(?:explanation|explain|describ|description|summar|docs?\b|documentation|postmortem|"
    r"post-mortem|write-?up|blog|article|sentence|paragraph|tutorial|wiki|onboarding|slides?\b|"
    r"lesson|course|training|changelog|readme|release notes|cheat ?sheet|glossary|faq\b|"
    r"quiz|exam|interview question)"
)
EXAMPLE = re.compile(
    r"(?:\blike|such as|e\.g\.?|for example|for instance|including|as in|similar to|i\.e\.?)"
    r"[\s:,]*$"
)


def words(text: str) -> list[str]:
    return WORD.findall(plain(text))


def plain(text: str) -> str:
    """Lower-cased prose with URLs, paths and addresses removed (their words are no cue)."""
    return NOT_PROSE.sub(" ", text.lower())
