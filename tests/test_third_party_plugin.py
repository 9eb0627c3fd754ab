"""A plugin built outside the project is found through its entry point, adds a config
section and a CLI command, and shows in `hotplex plugins` (in a subprocess, with the plugin
only on PYTHONPATH: the project's venv is not touched)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hotplex.testing.distributions import write_distribution

PLUGIN = '''
import click
from pydantic import Field

from hotplex import hookimpl
from hotplex.config import PluginSettings
from hotplex.records import CommandSpec, ConfigSection


class WeatherSettings(PluginSettings):
    city: str = Field("Oslo", description="Where to look.")


@click.command("weather")
def weather():
    """Say the weather."""
    click.echo("sunny in the plugin")


@hookimpl
def hotplex_add_config():
    return ConfigSection(name="weather", model=WeatherSettings)


@hookimpl
def hotplex_register_commands():
    return [CommandSpec(weather)]
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    site = tmp_path_factory.mktemp("third_party")
    write_distribution(
        site,
        "hotplex-weather",
        version="2.3.4",
        entry_points={"hotplex": {"weather": "hotplex_weather"}},
        files={"hotplex_weather/__init__.py": PLUGIN},
    )
    environ = {**os.environ, "PYTHONPATH": str(site), "HOTPLEX_DISABLE_PLUGINS": ""}
    environ.pop("HOTPLEX_CONFIG", None)
    return environ


def hotplex(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotplex", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_listed_by_hotplex_plugins(env: dict[str, str]) -> None:
    out = hotplex(env, "plugins").stdout
    row = next(line for line in out.splitlines() if line.startswith("weather"))
    assert "2.3.4" in row and "entry point" in row and "available" in row
    assert "add_config" in row and "register_commands" in row


def test_adds_a_cli_subcommand(env: dict[str, str]) -> None:
    result = hotplex(env, "weather")
    assert result.returncode == 0 and result.stdout == "sunny in the plugin\n"
    assert "weather" in hotplex(env, "--help").stdout


def test_adds_a_config_section(env: dict[str, str], tmp_path: Path) -> None:
    cfg = tmp_path / "h.yaml"
    cfg.write_text("plugins:\n  weather: {city: Bergen}\n")
    shown = hotplex(env, "--config", str(cfg), "config", "show")
    assert shown.returncode == 0 and "city: Bergen" in shown.stdout
    cfg.write_text("plugins:\n  weather: {cty: Bergen}\n")
    bad = hotplex(env, "--config", str(cfg), "config", "validate")
    assert bad.returncode == 1
    assert "plugins.weather.cty: unknown key; did you mean city?" in bad.stderr


def test_disabled_by_env_var(env: dict[str, str]) -> None:
    disabled = {**env, "HOTPLEX_DISABLE_PLUGINS": "weather"}
    assert hotplex(disabled, "weather").returncode == 2  # no such command
