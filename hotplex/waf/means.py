"""Three readings of a request that the prompt context (:mod:`.context`) relies on.

* :func:`negates`: ``stop`` is a negation only when it governs running or using something
  (``stop using `rm -rf` here``, ``stop it``); in ``stop the firewall: ...`` or ``stop
  auditing: systemctl stop auditd`` it is the verb of the request.
* :func:`defensive`: defence words (rule, hook, audit, firewall rules ...) say the text is
  about a defence, unless they are the object of a verb that turns something off (``drop
  all firewall rules``, ``silence the audit trail``): then the defence is the target.
* :func:`by_means`: a command introduced as the means of an imperative (``wipe the disk
  with CMD``, ``reset users by running CMD``, ``clear the log using CMD``), whatever the
  verb, is an order, unless the clause is negated, hypothetical, a question (other than a
  polite ``can you ...``), a story, writing about the command, or about a defence.
"""

from __future__ import annotations

from hotplex.waf._text import word_set
from hotplex.waf.vocab import (
    CONDITIONAL,
    DEFENSIVE,
    EXPLAIN_WORDS,
    INTERROGATIVE,
    MENTION,
    NARRATIVE,
    NEGATION,
    PREFIX,
    STOPS,
    SUBJECTS,
    WRITING,
    plain,
    words,
)

__all__ = ["by_means", "defensive", "negates"]

# what `stop` governs when it means "do not" (``stop using``, ``stop it``)
STOP_GOVERNS = word_set(
    "running using executing typing doing calling pasting invoking trying launching "
    "suggesting recommending adding putting it this that these those them"
)
# verbs that turn something off: a defence named right after one is its target
DISABLE = word_set(
    "stop disable drop flush silence kill halt clear wipe erase empty purge mask bypass evade "
    "nuke truncate zero blank uninstall unload deactivate suspend pause terminate hide "
    "tamper turn shut"
)
# words that end the object of a verb
OBJECT_END = word_set(
    "that which who whom whose where when if while so because before after to for with "
    "using via by through from in on at into"
)
MEANS = word_set("with using via through")
MEANS_GERUND = word_set(
    "running executing calling typing doing invoking issuing entering launching pasting"
)
# what may stand between the means and the command ("using the following command:")
MEANS_FILLER = word_set(
    "the this that a an following command commands one-liner oneliner line snippet script "
    "call sudo just simply : , - please"
)
DETERMINERS = word_set(
    "the a an this that these those my our your his her its their some any every each all no"
)
PAST = word_set(
    "ran did was were had got made took broke wrote lost saw said went came left put "
    "found thought knew began became kept"
)
NOT_IMPERATIVE = (
    SUBJECTS
    | INTERROGATIVE
    | CONDITIONAL
    | DETERMINERS
    | PAST
    | EXPLAIN_WORDS
    | MENTION["explanation"]
    | MENTION["quoted"]
    | MENTION["defensive"]
    | word_set("to not never don't dont")
)
RELATIVE = word_set("that which who whom whose where")
EMBEDDED = (
    word_set("what how why whether if when nobody")
    | EXPLAIN_WORDS
    | MENTION["explanation"]
    | MENTION["quoted"]
    | MENTION["defensive"]
)
POLITE = word_set("can could would will")
OPENERS = word_set("ok okay so hey hi please and then now")


def negates(ws: list[str], j: int) -> bool:
    """True when ``ws[j]`` negates what follows it."""
    word = ws[j]
    if word not in NEGATION:
        return False
    if word != "stop":
        return True
    nxt = ws[j + 1] if j + 1 < len(ws) else ""
    return not nxt or nxt in STOP_GOVERNS or nxt in STOPS or nxt.startswith("\x00")


def defensive(text: str) -> bool:
    """True when ``text`` talks about a defence (a rule, hook, test, detector ...) other
    than as the object of a verb that turns something off."""
    ws = words(text)
    if not DISABLE.intersection(ws):
        return bool(DEFENSIVE.search(plain(text)))
    kept: list[str] = []
    k = 0
    while k < len(ws):
        word = ws[k]
        kept.append(word)
        k += 1
        if word not in DISABLE:
            continue
        if k < len(ws) and ws[k] in ("off", "down"):
            k += 1
        for _ in range(5):
            if k >= len(ws) or ws[k] in STOPS or ws[k] in OBJECT_END:
                break
            k += 1
    return bool(DEFENSIVE.search(" ".join(kept)))


def _means_at(ws: list[str]) -> int:
    """Where the lead-in's closing means phrase (``with``, ``by running`` ...) starts, or -1."""
    k = len(ws) - 1
    while k >= 0 and ws[k] in MEANS_FILLER:
        k -= 1
    if k >= 0 and ws[k] in MEANS:
        return k
    if k >= 1 and ws[k] in MEANS_GERUND and ws[k - 1] == "by":
        return k - 1
    return -1


def _verb(ws: list[str], means: int) -> int:
    """The index of the first word of the nearest clause before ``means`` that has one
    past the polite prefixes, or -1."""
    end = means
    while end > 0:
        start = end - 1
        while start >= 0 and ws[start] not in STOPS:
            start -= 1
        i = start + 1
        while i < end and ws[i] in PREFIX:
            i += 1
        if i < end:
            return i
        end = start
    return -1


def _imperative(word: str) -> bool:
    if word in NOT_IMPERATIVE or word in STOPS:
        return False
    if word.endswith("ed") or (word.endswith("ing") and len(word) > 5):
        return False  # a story (wiped, emptied) or a gerund (wiping the disk with ...)
    return word[0].isalpha()


def by_means(lead: str, trail: str) -> bool:
    """True when the command is the means of an imperative request in ``lead`` (the
    sentence up to the command; ``trail`` is the rest of it)."""
    ws = [w for w in words(lead) if not w.startswith("\x00")]
    means = _means_at(ws)
    if means <= 0:
        return False
    i = _verb(ws, means)
    if i < 0 or not _imperative(ws[i]) or negates(ws, i):
        return False
    # the means may belong to a relative clause ("the script that runs with"), an embedded
    # question or explanation ("understand what happens with") or a negation ("nobody can")
    between = ws[i + 1 : means]
    if RELATIVE.intersection(between) or EMBEDDED.intersection(between):
        return False
    if any(negates(between, j) for j in range(len(between))):
        return False
    sentence = f"{lead} {trail}"
    if "?" in words(sentence):
        s = 0
        while s < means and ws[s] in OPENERS:
            s += 1
        if not (ws[s] in POLITE and ws[s + 1 : s + 2] in (["you"], ["u"])):
            return False  # a question, other than a polite request
    prose = plain(sentence)
    return not (NARRATIVE.search(prose) or WRITING.search(plain(lead)) or defensive(sentence))
