"""Shell commands hidden in interpreter code (``python -c``, ``perl -e``, ``node -e``...).

Finds string (and list-of-string) arguments of the calls that start a shell or a program
(``os.system``, ``subprocess.run``, ``child_process.execSync``, ``system``, ``qx``,
backticks, ``os.execute``, ``io.popen``, awk's ``system``), strings handed to the
language's own ``eval``/``exec``, and base64 literals that decode to text.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass

from hotplex.waf._re2 import compile_pattern
from hotplex.waf.shell import ansi_c

__all__ = ["Found", "scan_code"]

_STR = r'"(?:[^"\\\n]|\\.)*"|' + r"'(?:[^'\\\n]|\\.)*'"
_TEMPLATE = r"`(?:[^`\\]|\\.)*`"
_LIST = r"\[(?:\s*(?:" + _STR + r")\s*,?)+\s*\]"
_PERL_QUOTE = r"qq?\s*(?:\{[^}\n]*\}|\([^)\n]*\)|\[[^\]\n]*\]|/[^/\n]*/|\|[^|\n]*\||![^!\n]*!)"
_RUN_NAMES = (
    r"system|popen[23]?|exec[lv]?p?e?|execSync|execFile(?:Sync)?|spawn(?:Sync)?|"
    r"check_output|check_call|call|run|Popen|getoutput|getstatusoutput|shell_exec|passthru|"
    r"proc_open|pcntl_exec|capture[23]e?|pipeline|execute|qx|Start-Process|"
    r"Invoke-Expression|iex|system2|shell"
)
_CALL = compile_pattern(
    r"(?:\b|[.:$])(?:" + _RUN_NAMES + r")\s*[({]?\s*(?:\w+\s*=\s*)?"
    r"(" + _STR + "|" + _TEMPLATE + "|" + _LIST + "|" + _PERL_QUOTE + r")"
    r"(?:\s*,\s*(" + _LIST + r"))?"
)
_CODE_CALL = compile_pattern(
    r"(?:\b)(?:eval|exec|compile|Function|instance_eval|class_eval|loadstring|load)\s*\(\s*("
    + _STR
    + r")"
)
_BACKTICK = compile_pattern(
    r"`([^`\n]{2,})`|\bqx\s*[({\[/|]([^)}\]/|\n]{2,})[)}\]/|]"
    r"|%x[({\[]([^)}\]\n]{2,})[)}\]]"
)
_AWK_PIPE = compile_pattern(r"(" + _STR + r")\s*\|\s*getline|\|\s*(" + _STR + r")")
_JOIN = compile_pattern(r"""(?:"\s*\+\s*"|'\s*\+\s*'|"\s*\.\s*"|'\s*\.\s*')""")
_LITERAL = compile_pattern(_STR)
_BASE64 = compile_pattern(r"""["']([A-Za-z0-9+/]{16,}={0,2})["']""")


@dataclass(frozen=True, slots=True)
class Found:
    shell: tuple[str, ...]
    code: tuple[str, ...]


def _unquote(literal: str) -> str:
    return ansi_c(literal[1:-1])


def _strings(group: str) -> str:
    if group.startswith("["):
        return " ".join(_unquote(m.group()) for m in _LITERAL.finditer(group))
    if group.startswith("`"):
        return group[1:-1]
    if group.startswith("q"):
        body = group.lstrip("q").lstrip()
        return body[1:-1]
    return _unquote(group)


_RUN_HINT = re.compile(
    r"system|popen|exec|spawn|check_|call|run|Popen|getoutput|shell|passthru|proc_open|"
    r"capture|pipeline|execute|qx|Start-Process|Invoke-Expression|iex"
)
_CODE_HINT = re.compile(r"eval|exec|compile|Function|load")
_DECODE_HINT = re.compile(r"b64|base64|atob|Buffer|decode|FromBase64")


def scan_code(lang: str, code: str) -> Found:
    """The shell commands and nested code ``code`` runs (at most 64 of each)."""
    # cheap literal hints decide which RE2 scans are worth running
    runs = _RUN_HINT.search(code) is not None
    evals = _CODE_HINT.search(code) is not None
    ticks = lang in ("perl", "ruby", "php", "pwsh", "node") and (
        "`" in code or "qx" in code or "%x" in code
    )
    if not (runs or evals or ticks or lang in ("pwsh", "awk")):
        return Found((), ())
    if "+" in code or "." in code:
        code = _JOIN.sub("", code)
    shell: list[str] = []
    nested: list[str] = []
    for m in _CALL.finditer(code) if runs else ():
        first = _strings(m.group(1))
        rest = _strings(m.group(2)) if m.group(2) else ""
        shell.append(f"{first} {rest}".strip())
        if len(shell) >= 64:
            break
    if ticks:
        for m in _BACKTICK.finditer(code):
            shell.append(next(g for g in m.groups() if g is not None))
    if lang == "awk":
        for m in _AWK_PIPE.finditer(code):
            shell.append(_unquote(m.group(1) or m.group(2)))
    for m in _CODE_CALL.finditer(code) if evals else ():
        nested.append(_unquote(m.group(1)))
    for m in _BASE64.finditer(code) if _DECODE_HINT.search(code) else ():
        try:
            decoded = binascii.a2b_base64(m.group(1)).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            continue
        if decoded.isprintable() or all(c.isprintable() or c in "\n\t" for c in decoded):
            nested.append(decoded)
    if lang == "pwsh":
        shell.append(code)
    return Found(tuple(shell[:64]), tuple(nested[:64]))
