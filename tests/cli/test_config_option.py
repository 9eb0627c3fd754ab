"""``--config FILE`` works before and after the subcommand, for every command that reads it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from cli_kit import free_port
from click.testing import CliRunner, Result

from hotplex import hookimpl
from hotplex.cli import build_cli
from hotplex.plugins import make_plugin_manager
from hotplex.records import CommandSpec

BASE_ENV = {"HOTPLEX_URL": None, "HOTPLEX_TOKEN": None, "HOTPLEX_CONFIG": None}


class EchoConfigPlugin:
    """A plugin command that prints the config file the CLI resolved."""

    @hookimpl
    def hotplex_register_commands(self) -> list[CommandSpec]:
        @click.command("where")
        @click.pass_context
        def where(ctx: click.Context) -> None:
            click.echo(f"config={ctx.find_root().obj['config_path']}")

        return [CommandSpec(command=where)]


def invoke(args: list[str], env: dict[str, str | None] | None = None) -> Result:
    pm = make_plugin_manager(entry_points=False, environ={}, extra=[("echo", EchoConfigPlugin())])
    return CliRunner().invoke(build_cli(pm), args, env={**BASE_ENV, **(env or {})})


@pytest.fixture
def config(tmp_path: Path) -> tuple[Path, int]:
    port = free_port()
    path = tmp_path / "h.yaml"
    path.write_text(
        f"engine: {{data_dir: {tmp_path / 'data'}}}\n"
        f"server: {{port: {port}}}\n"
        "security: {waf: {enabled: false}}\n"
    )
    return path, port


# (command words, what in the output shows the file was read; {cfg} and {port} filled in)
COMMANDS = [
    (["config", "show"], "port: {port}"),
    (["config", "validate"], "ok: {cfg}"),
    (["doctor"], "config                 {cfg}"),
    (["status"], "cannot reach HotPlex at http://127.0.0.1:{port}:"),
    (["sessions", "list"], "cannot reach HotPlex at http://127.0.0.1:{port}:"),
    (["waf", "rules"], "security.waf.enabled is false"),
    (["waf", "check", "--command", "ls"], "security.waf.enabled is false"),
    (["where"], "config={cfg}"),
]


@pytest.mark.parametrize(("words", "expected"), COMMANDS, ids=[" ".join(c[0]) for c in COMMANDS])
def test_config_before_or_after_the_command_is_the_same(
    config: tuple[Path, int], words: list[str], expected: str
) -> None:
    cfg, port = config
    before = invoke(["--config", str(cfg), *words])
    # the option goes right after the command's name (the last word before its own options)
    name_len = 1 if words[0] in ("doctor", "status", "where") else 2
    after = invoke([*words[:name_len], "--config", str(cfg), *words[name_len:]])
    assert "no such option" not in after.output
    shown = expected.format(cfg=cfg, port=port)
    assert shown in before.output, before.output
    assert after.exit_code == before.exit_code
    assert after.output == before.output


def test_config_after_a_group_name_applies_to_its_subcommand(config: tuple[Path, int]) -> None:
    cfg, port = config
    result = invoke(["config", "--config", str(cfg), "show"])
    assert result.exit_code == 0 and f"port: {port}" in result.output


def test_two_different_files_are_a_usage_error(config: tuple[Path, int], tmp_path: Path) -> None:
    cfg, _ = config
    other = tmp_path / "other.yaml"
    other.write_text("server: {port: 1}\n")
    result = invoke(["--config", str(cfg), "config", "show", "--config", str(other)])
    assert result.exit_code == 2
    assert "--config names two different files" in result.output
    assert str(cfg) in result.output and str(other) in result.output
    assert "after 'config show'" in result.output
    # the WAF commands answer usage errors with 64
    result = invoke(["--config", str(cfg), "waf", "check", "--config", str(other), "x"])
    assert result.exit_code == 64 and "two different files" in result.output
    result = invoke(["config", "--config", str(cfg), "show", "--config", str(other)])
    assert result.exit_code == 2 and "two different files" in result.output


def test_the_same_file_twice_is_fine(config: tuple[Path, int]) -> None:
    cfg, port = config
    relative = os.path.relpath(cfg)
    result = invoke(["--config", str(cfg), "config", "show", "--config", relative])
    assert result.exit_code == 0 and f"port: {port}" in result.output


def test_config_after_the_command_beats_the_environment(
    config: tuple[Path, int], tmp_path: Path
) -> None:
    cfg, port = config
    other = tmp_path / "other.yaml"
    other.write_text("server: {port: 1}\n")
    result = invoke(["config", "show", "--config", str(cfg)], {"HOTPLEX_CONFIG": str(other)})
    assert result.exit_code == 0 and f"port: {port}" in result.output


def run_main(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOTPLEX_DISABLE_PLUGINS": ""}
    env.pop("HOTPLEX_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "hotplex", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


@pytest.mark.parametrize("after", [False, True])
def test_plugins_load_from_the_config_named_after_the_command(tmp_path: Path, after: bool) -> None:
    """Plugins load before click parses; the file after the command still decides which."""
    cfg = tmp_path / "h.yaml"
    cfg.write_text("plugins_enabled: [relay]\n")
    args = ["plugins", "--config", str(cfg)] if after else ["--config", str(cfg), "plugins"]
    result = run_main(*args)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:] if line[:1] != " "}
    assert " off " in rows["slack"] and " off " not in rows["relay"]
