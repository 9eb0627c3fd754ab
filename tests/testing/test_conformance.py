"""The provider conformance suite fails on providers that lack a behaviour: each provider in
broken_providers.py lacks one, and exactly the tests of that behaviour fail."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SUITE = [
    "test_hot_turn_keeps_context",
    "test_interrupt_mid_turn",
    "test_tool_allowed_by_the_gate",
    "test_tool_denied_by_the_gate",
    "test_process_death_is_reported",
    "test_close_kills_the_process_group",
]
EXPECTED_FAILURES = {
    "TestForgetful": {"test_hot_turn_keeps_context"},
    "TestDeaf": {"test_interrupt_mid_turn"},
    "TestCareless": {"test_tool_allowed_by_the_gate", "test_tool_denied_by_the_gate"},
    "TestMute": {"test_tool_denied_by_the_gate"},
    "TestSilent": {"test_process_death_is_reported"},
    "TestImmortal": {"test_close_kills_the_process_group"},
    "TestLeaky": {"test_close_kills_the_process_group"},
    "TestCold": {"test_hot_turn_keeps_context"},
    "TestTidy": set(),
}
# why each one fails, as the suite says it
REASONS = [
    "'hello PLUM' not in the reply 'recall: '",
    "TimeoutError",
    "the tool ran without asking the gate",
    "the denied tool ran",
    "the death was not reported",
    "alive after close()",
    "left in group",
    "the agent was not kept hot",
]


@pytest.mark.timeout(120)
def test_each_missing_behaviour_fails_its_tests(pytester: pytest.Pytester) -> None:
    source = Path(__file__).with_name("broken_providers.py").read_text()
    pytester.makepyfile(test_broken=source)
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rfE", "-q", "--timeout=30")
    output = result.stdout.str()
    failed = set(re.findall(r"^FAILED test_broken\.py::(\w+)::(\w+)", output, re.MULTILINE))
    expected = {(cls, test) for cls, tests in EXPECTED_FAILURES.items() for test in tests}
    assert failed == expected, output
    total = len(EXPECTED_FAILURES) * len(SUITE)
    result.assert_outcomes(passed=total - len(expected), failed=len(expected))
    for reason in REASONS:
        assert reason in output, reason


def documented_example() -> str:
    text = (Path(__file__).parents[2] / "docs" / "plugins.md").read_text()
    section = text[text.index("## Checking a provider") :]
    match = re.search(r"```python\n(# tests/test_conformance.py\n.*?)\n```", section, re.DOTALL)
    assert match, "docs/plugins.md: no example under Checking a provider"
    return match.group(1) + "\n"


@pytest.mark.real_cli
@pytest.mark.timeout(180)
def test_the_documented_example_passes_in_strict_mode(
    pytester: pytest.Pytester, claude_binary: Path
) -> None:
    """docs/plugins.md's example, with Claude Code as ``MyProvider``, in pytest-asyncio's
    default (strict) mode as a plugin author's project would run it."""
    package = pytester.mkpydir("my_pkg")
    (package / "provider.py").write_text(
        "from hotplex.config import ProviderSettings\n"
        "from hotplex.providers.claude_code import ClaudeCodeProvider\n\n\n"
        "class MyProvider(ClaudeCodeProvider):\n"
        "    def __init__(self):\n"
        f"        super().__init__(ProviderSettings(binary={str(claude_binary)!r}))\n"
    )
    pytester.makepyfile(test_conformance=documented_example())
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=6)
