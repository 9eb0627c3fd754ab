"""The agent's environment is an allow-list; config secrets never reach it."""

from __future__ import annotations

import logging

import pytest

from hotplex.engine.environment import DEFAULT_PATH, agent_environment
from hotplex.errors import ConfigError

SLACK_TOKEN = "xoxb-1234567890-abcdefghijkl"
ADMIN_TOKEN = "admin-token-0123456789"

PARENT = {
    "PATH": "/opt/bin:/usr/bin",
    "HOME": "/home/agent",
    "USER": "agent",
    "LOGNAME": "agent",
    "SHELL": "/bin/bash",
    "TERM": "xterm-256color",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "LC_TIME": "en_GB.UTF-8",
    "TZ": "Europe/Berlin",
    "TMPDIR": "/tmp/agent",
    "XDG_CONFIG_HOME": "/home/agent/.config",
    "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
    "CLAUDE_CONFIG_DIR": "/home/agent/.claude",
    # Must stay behind:
    "CLAUDECODE": "1",
    "CLAUDE_CODE_ENTRYPOINT": "cli",
    "SLACK_BOT_TOKEN": SLACK_TOKEN,
    "SLACK_SIGNING_SECRET": "signing",
    "AWS_ACCESS_KEY_ID": "AKIA0000",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "GITHUB_TOKEN": "ghp_0000",
    "DATABASE_URL": "postgresql://u:p@db/x",
    "HOTPLEX_ADMIN_TOKEN": ADMIN_TOKEN,
    "LARK_APP_SECRET": "lark",
    "FEISHU_APP_SECRET": "feishu",
    "OPENAI_API_KEY": "sk-0000",
    "RANDOM_THING": "x",
    "PYTHONPATH": "/evil",
    "LD_PRELOAD": "/evil.so",
}
SECRETS = (SLACK_TOKEN, ADMIN_TOKEN)

ALLOWED = [
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LC_ALL", "LC_TIME", "TZ",
    "TMPDIR", "XDG_CONFIG_HOME", "ANTHROPIC_BASE_URL", "CLAUDE_CONFIG_DIR",
]  # fmt: skip
DENIED = [
    "CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "DATABASE_URL",
    "HOTPLEX_ADMIN_TOKEN", "LARK_APP_SECRET", "FEISHU_APP_SECRET", "OPENAI_API_KEY",
    "RANDOM_THING", "PYTHONPATH", "LD_PRELOAD",
]  # fmt: skip


@pytest.mark.parametrize("name", DENIED)
def test_not_allowed_names_stay_behind(name: str) -> None:
    assert name not in agent_environment(PARENT, secrets=SECRETS)


@pytest.mark.parametrize("name", ALLOWED)
def test_allowed_names_pass_unchanged(name: str) -> None:
    assert agent_environment(PARENT, secrets=SECRETS)[name] == PARENT[name]


def test_no_secret_value_reaches_the_agent() -> None:
    env = agent_environment(PARENT, secrets=SECRETS)
    for value in env.values():
        assert all(secret not in value for secret in SECRETS)


def test_quiet_defaults_are_set() -> None:
    env = agent_environment({})
    assert env["DISABLE_AUTOUPDATER"] == "1"
    assert env["DISABLE_TELEMETRY"] == "1"
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"


def test_path_falls_back_when_absent() -> None:
    assert agent_environment({"HOME": "/h"})["PATH"] == DEFAULT_PATH


def test_parent_cannot_unset_the_quiet_defaults() -> None:
    env = agent_environment({"DISABLE_TELEMETRY": "0"})
    assert env["DISABLE_TELEMETRY"] == "1"


def test_extra_is_added_and_may_change_defaults() -> None:
    env = agent_environment(
        PARENT, extra={"DISABLE_TELEMETRY": "0", "NODE_OPTIONS": "--max-old-space-size=2048"}
    )
    assert env["DISABLE_TELEMETRY"] == "0"
    assert env["NODE_OPTIONS"] == "--max-old-space-size=2048"


def test_overrides_win_over_parent_and_extra() -> None:
    env = agent_environment(
        PARENT,
        extra={"CLAUDE_CONFIG_DIR": "/from/extra", "CLAUDE_CODE_ENTRYPOINT": "extra"},
        overrides={"CLAUDE_CONFIG_DIR": "/engine/dir", "CLAUDE_CODE_ENTRYPOINT": "hotplex"},
    )
    assert env["CLAUDE_CONFIG_DIR"] == "/engine/dir"
    assert env["CLAUDE_CODE_ENTRYPOINT"] == "hotplex"


@pytest.mark.parametrize(
    "value",
    [SLACK_TOKEN, f"Bearer {SLACK_TOKEN}", f"https://x.test/?token={ADMIN_TOKEN}&a=1"],
)
def test_secret_valued_vars_dropped_even_under_allowed_names(value: str) -> None:
    env = agent_environment({"ANTHROPIC_FOO": value, "CLAUDE_BAR": "fine"}, secrets=SECRETS)
    assert "ANTHROPIC_FOO" not in env
    assert env["CLAUDE_BAR"] == "fine"


def test_short_secrets_only_match_whole_values() -> None:
    env = agent_environment({"LANG": "C", "TZ": "UTC", "TERM": "xterm"}, secrets=("C", "UT"))
    assert "LANG" not in env
    assert env["TZ"] == "UTC"
    assert env["TERM"] == "xterm"


def test_empty_secret_matches_nothing() -> None:
    assert agent_environment({"TERM": "xterm"}, secrets=("",))["TERM"] == "xterm"


def test_secret_in_path_drops_it_and_falls_back() -> None:
    env = agent_environment({"PATH": f"/opt/{ADMIN_TOKEN}/bin"}, secrets=SECRETS)
    assert env["PATH"] == DEFAULT_PATH


@pytest.mark.parametrize("value", [SLACK_TOKEN, f"prefix-{SLACK_TOKEN}"])
def test_secret_in_extra_raises_naming_the_key_not_the_secret(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError) as info:
        agent_environment(PARENT, extra={"MY_TOKEN": value}, secrets=SECRETS)
    message = str(info.value)
    assert message == (
        "provider.env.MY_TOKEN: holds a secret from the config; refusing to pass it to the agent"
    )
    assert info.value.path == "provider.env.MY_TOKEN"
    assert SLACK_TOKEN not in repr(info.value)
    assert SLACK_TOKEN not in caplog.text


def test_secret_in_overrides_is_dropped_and_logged_without_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    env = agent_environment(PARENT, secrets=SECRETS, overrides={"CLAUDE_X": SLACK_TOKEN})
    assert "CLAUDE_X" not in env
    assert "CLAUDE_X" in caplog.text
    assert SLACK_TOKEN not in caplog.text


def test_parent_is_not_modified() -> None:
    parent = dict(PARENT)
    agent_environment(parent, extra={"A": "b"}, secrets=SECRETS, overrides={"C": "d"})
    assert parent == PARENT
