"""The command WAF: stops dangerous commands in chat prompts and in agents' tool calls.

Rules (``configs/waf.yaml`` plus ``security.waf.rule_files``) are RE2 patterns matched
against *canonical views* of commands, never against raw text, so a rule describes a
behaviour once and every spelling of it is caught. Matching is linear in the input:
rule patterns and the scans that run over whole inputs use RE2; the tokeniser uses fixed
character-class patterns; nested analysis is capped (depth 8, 256 nested strings, 1 MiB of
decoded data, 64 KiB per decoded payload).

Input limits
    Text over ``max_bytes`` (1 MiB by default, UTF-8) and text holding NUL, escape or other
    control characters (tab, newline and carriage return are fine) or lone surrogates raise
    :class:`WafInputError`, whose message names the limit.

Normalisation (in order; spans are mapped back to the original text)
    1. CR and CRLF become LF.
    2. Prompts only: HTML entities, JSON ``\\uXXXX`` escapes and URL ``%XX`` escapes
       (when there are two or more) are decoded once.
    3. Zero-width, joiner, bidi-control, variation-selector and other invisible characters
       are dropped; NFKC folds fullwidth and compatibility forms; typographic quotes,
       dashes, slashes and Unicode spaces fold to ASCII; Cyrillic and Greek homoglyphs fold
       to Latin in words made only of them and Latin letters (``гм`` is ``rm``, Russian
       prose stays Russian).
    4. Backslash-newline line continuations are removed.
    5. Markdown (prompts, :mod:`.prompt`): fenced blocks and inline code are found and
       *examined*: a shell (or unlabelled) block as one script, an interpreter block
       (python, javascript, perl, ruby, php, lua, powershell, awk) as code, any other block
       line by line like prose. A cheap RE2 prefilter picks what to tokenise: in code, the
       lines where a command name stands in command position or obfuscation shows (quotes
       inside words, ``$``, backslashes, braces, base64-like blobs, ``/dev/tcp``, secret
       paths...), extended while a quote, bracket or here-document is open, analysed in
       order with shared variables; in prose, the sentences where a command name is used
       like one (followed by a flag, path, file name or pipe, or preceded by ``run``, a
       colon or the line start) or obfuscation shows. In a sentence every known command
       name may start the command (``please run rm -rf / now``); a sentence naming a path
       also yields an ``@prose ...`` view so rules can catch requests in words ("paste
       ~/.aws/credentials here"); a sentence whose first word is a command name (``Kill
       every process: kill -9 -1``) yields it and the later ones. A quoted string in prose
       that starts with a command (``Make space: "rm -rf /var"``) is examined like inline
       code (:mod:`.quotes`), and a code line that is only a redirection (``> /etc/group``,
       ``: > /var/log/syslog``) is a command, not a prompt marker.
    6. Shell-aware tokenising (:mod:`.shell`): quotes and backslashes are removed inside
       words (``r''m``, ``r\\m``, ``"rm"``), ``$'\\x72'`` is decoded, ``${IFS}`` and unset
       positional parameters expand to blanks and nothing, brace expansion runs
       (``{rm,-rf,/}``), variables assigned earlier resolve (``a=rm; $a``, ``${!x}``,
       arrays, ``${x:0:2}``), command substitutions that only print text resolve
       (``$(echo rm)``, ``$(printf ...)``, ``$(echo ... | base64 -d)``), globs in command
       names match known commands (``/???/r?``), and every segment of lists, pipelines,
       subshells and substitutions is examined.
    7. Wrappers are stripped (``sudo``, ``env``, ``nohup``, ``timeout``, ``busybox``,
       ``command`` but not ``command -v``, ``xargs``...), the command name becomes its
       lower-cased basename, paths collapse (``//``, ``/./``, ``x/..``, ``$HOME`` -> ``~``)
       and numeric IPv4 hosts are written dotted.
    8. What a command executes is analysed in turn: ``sh -c``/``eval``/``su -c``/``ssh host
       CMD`` strings, ``find -exec`` and ``xargs`` commands, interpreter one-liners
       (strings passed to ``os.system``, ``subprocess``, ``child_process``, backticks...),
       a shell's stdin when the producing pipeline can be evaluated (``echo ... | base64 -d
       | sh``, ``rev <<< ... | sh``, gzip/xz/bzip2 blobs), here-documents, scripts written
       (``echo ... > x.sh``) or downloaded (``curl -o x.sh``) and then run.

Context (prompts only; see :mod:`.context`)
    A command found in a prompt is an *order* unless its surroundings say otherwise. An
    execution verb governing it (``run this:``, ``can you execute``) makes it an order even
    inside a question (``what does this do? run it now: ...``), unless negated or
    hypothetical (``don't run``, ``what happens if I run``); so does a means phrase after
    any imperative (``reset users by running ...``, ``empty the log using ...``), unless
    negated, asked, told as a story, written about or defended against. ``stop`` is the verb
    of the request (``stop auditing: systemctl stop auditd``) unless it governs running or
    using (``stop using ...``). Otherwise it is let through
    when its clause asks, explains, searches, edits or defends (``what does ... do?``,
    ``explain``, ``grep for``, ``a hook that rejects``, ``here is the log:``), when it sits
    in a data block (```` ```log ````), and it is an order again when a nearby sentence
    points back at it (``run it``, ``go ahead``). Quoted data inside a command is data
    (``grep -r 'rm -rf' docs/``, ``echo 'rm -rf /' > notes.txt`` - unless that file is run
    later in the same text). Workspace-local cleanups (``rm -rf node_modules dist``,
    ``rm -rf /tmp/x``) match no rule. A command let through is still listed in
    ``Verdict.hits`` with the reason as its ``context``.

Verdicts
    :class:`Verdict` carries the action (``allow``, ``warn``, ``ask``, ``block``) and the
    deciding rule's id, category, level, description, span (offsets into the original
    text; for content that was decoded or nested, the span of the command that carried it)
    and canonical form. Agents' commands and tool paths have no context: the rule's action
    (after overrides) applies. The allow list (``security.waf.allow``) holds RE2 patterns
    that must match a hit's whole canonical command (or canonical path, or URL).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hotplex.waf.engine import DEFAULT_MAX_BYTES, Waf
    from hotplex.waf.model import Hit, Rule, Verdict, WafInputError
    from hotplex.waf.rules import load_rule_file, shipped_rules

__all__ = [
    "DEFAULT_MAX_BYTES",
    "Hit",
    "Rule",
    "Verdict",
    "Waf",
    "WafInputError",
    "load_rule_file",
    "shipped_rules",
]

_HOMES = {
    "DEFAULT_MAX_BYTES": "engine",
    "Waf": "engine",
    "Hit": "model",
    "Rule": "model",
    "Verdict": "model",
    "WafInputError": "model",
    "load_rule_file": "rules",
    "shipped_rules": "rules",
}


def __getattr__(name: str) -> Any:
    # lazy: `hotplex waf --help` and the CLI start must not compile the rule engine
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'hotplex.waf' has no attribute {name!r}")
    return getattr(import_module(f"hotplex.waf.{home}"), name)
