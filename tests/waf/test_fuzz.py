"""Random Unicode, bytes and shell-shaped noise: no crash, no hang.

The only exception allowed out of a check is WafInputError (control characters)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotplex.waf import Verdict, Waf, WafInputError, shipped_rules

WAF = Waf(shipped_rules(), home="/home/dev")
TOKENS = [
    *"$(){}[]'\"`\\|&;<> \n\t#*?~!=-/.:,@%^+abcrmfshxdev019",
    "rm",
    "-rf",
    "/",
    "sh -c ",
    "eval ",
    "$(",
    "${",
    "<<",
    "EOF\n",
    "|",
    "bash",
    "curl ",
    "base64 -d",
    "\u200b",
    "\uff52",
    "```",
    "`",
    "/dev/tcp/",
    "IFS",
    "{a,b}",
    "sudo ",
]
SHELLISH = st.lists(st.sampled_from(TOKENS), max_size=120).map("".join)
relaxed = settings(suppress_health_check=[HealthCheck.too_slow])


def _all_checks(text: str) -> None:
    for check in (WAF.check_prompt, WAF.check_command):
        try:
            verdict = check(text)
        except WafInputError:
            continue
        assert isinstance(verdict, Verdict)
        assert verdict.action in ("allow", "warn", "ask", "block")
        if verdict.span is not None:
            assert 0 <= verdict.span[0] <= verdict.span[1] <= len(text)
    try:
        WAF.check_tool("Read", {"file_path": text}, work_dir=Path("/w"))
        WAF.check_tool("WebFetch", {"url": text}, work_dir=Path("/w"))
    except WafInputError:
        pass


@relaxed
@given(st.text(max_size=2000))
def test_random_unicode(text: str) -> None:
    _all_checks(text)


@relaxed
@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    _all_checks(data.decode("utf-8", "replace"))
    _all_checks(data.decode("latin-1"))


@relaxed
@given(SHELLISH)
def test_shell_shaped_noise(text: str) -> None:
    _all_checks(text)


@relaxed
@given(st.lists(SHELLISH, max_size=4))
def test_noise_inside_markdown(parts: list[str]) -> None:
    _all_checks("run this: `" + "`\n```sh\n".join(parts) + "\n```")
