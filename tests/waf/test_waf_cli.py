"""``hotplex waf check``: verdict, rule and span; exit 0 allow/warn, 1 block, 2 ask,
64 usage error, 70 internal error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hotplex.cli.waf import waf as waf_group


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "hotplex.yaml"
    path.write_text(f"engine:\n  data_dir: {tmp_path / 'data'}\n", "utf-8")
    return path


def run(config: Path, *args: str, stdin: str | None = None) -> Result:
    runner = CliRunner()
    return runner.invoke(waf_group, list(args), obj={"config_path": str(config)}, input=stdin)


def test_allow(config: Path) -> None:
    result = run(config, "check", "refactor the parser please")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("allow")


def test_warn_exits_zero(config: Path) -> None:
    result = run(config, "check", "--command", "sudo apt-get install -y jq")
    assert result.exit_code == 0 and result.output.startswith("warn  priv.sudo")


def test_block_prints_rule_and_span(config: Path) -> None:
    result = run(config, "check", "please", "run", "rm -rf /")
    assert result.exit_code == 1, result.output
    assert "block  delete.root (critical, deletion)  span 11-19" in result.output
    assert "matched: rm -rf /" in result.output


def test_ask_exits_two(config: Path) -> None:
    result = run(config, "check", "--command", "--", "sudo -i")
    assert result.exit_code == 2 and "priv.root_shell" in result.output


def test_stdin_and_json(config: Path) -> None:
    result = run(config, "check", "--stdin", "--json", stdin="what does `rm -rf /` do?")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["action"] == "allow" and data["hits"][0]["context"] == "question"


def test_refused_input_blocks(config: Path) -> None:
    result = run(config, "check", "--stdin", stdin="rm -rf /\x00")
    assert result.exit_code == 1 and "NUL byte" in result.output


@pytest.mark.parametrize(
    "args", [("check",), ("check", "--stdin", "text"), ("check", "--nope", "x"), ("nope",)]
)
def test_usage_errors_exit_64(config: Path, args: tuple[str, ...]) -> None:
    assert run(config, *args).exit_code == 64


def test_bad_rule_file_exits_70(config: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - id: bad\n    category: c\n    level: high\n    action: block\n"
        "    description: d\n    patterns: ['(']\n",
        "utf-8",
    )
    config.write_text(config.read_text() + f"security:\n  waf:\n    rule_files: [{rules}]\n")
    result = run(config, "check", "ls")
    assert result.exit_code == 70
    assert "rule 'bad': invalid pattern" in result.output


def test_invalid_config_exits_70(config: Path) -> None:
    config.write_text("security:\n  waf:\n    enabeld: true\n")
    assert run(config, "check", "ls").exit_code == 70


def test_internal_error_exits_70(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hotplex.waf import Waf

    def boom(self: Waf, text: str) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(Waf, "check_prompt", boom)
    result = run(config, "check", "ls")
    assert result.exit_code == 70 and "internal error: RuntimeError: boom" in result.output


def test_rules_lists_actions_after_overrides(config: Path) -> None:
    config.write_text(
        config.read_text() + "security:\n  waf:\n    overrides:\n"
        "      delete.root: ask\n      privilege: 'off'\n"
    )
    result = run(config, "rules")
    assert result.exit_code == 0
    lines = {line.split()[0]: line.split() for line in result.output.splitlines()}
    assert lines["delete.root"][2] == "ask"
    assert lines["priv.sudo"][2] == "off"
