from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

HOTPLEX = [sys.executable, "-m", "hotplex"]


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "HOTPLEX_DISABLE_PLUGINS": "", **(env or {})}
    full_env.pop("HOTPLEX_CONFIG", None)
    return subprocess.run(
        [*HOTPLEX, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=full_env,
        cwd=cwd,
        check=False,
    )


def test_help_is_fast() -> None:
    run("--help")  # warm the bytecode cache
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        result = run("--help")
        timings.append(time.perf_counter() - start)
        assert result.returncode == 0 and "doctor" in result.stdout
    # the target is 0.5 s; the bound is loose because the machine is shared
    assert min(timings) < 1.5, timings


def test_version() -> None:
    result = run("version")
    assert result.returncode == 0 and result.stdout.startswith("hotplex 0.")


def test_plugins_lists_core_and_entry_points() -> None:
    out = run("plugins").stdout
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line and line[0] != " "}
    assert set(rows) == {"core", "slack", "feishu", "relay", "cron", "webhook"}
    assert "builtin" in rows["core"] and "entry point" in rows["slack"]
    assert "available" in rows["slack"] and "add_config" in rows["slack"]


def test_disabling_by_env_removes_the_plugin() -> None:
    out = run("plugins", env={"HOTPLEX_DISABLE_PLUGINS": "slack"}).stdout
    slack = [line for line in out.splitlines() if line.startswith("slack")]
    assert slack and " off " in slack[0] and "disabled by HOTPLEX_DISABLE_PLUGINS" in out


def test_config_validate_misspelled_key(tmp_path: Path) -> None:
    cfg = tmp_path / "h.yaml"
    cfg.write_text("plugins:\n  slack:\n    bot_tokn: x\n")
    result = run("--config", str(cfg), "config", "validate")
    assert result.returncode != 0
    assert f"{cfg}: plugins.slack.bot_tokn: unknown key; did you mean bot_token?" in result.stderr


def test_config_validate_wrong_type(tmp_path: Path) -> None:
    cfg = tmp_path / "h.yaml"
    cfg.write_text("engine:\n  max_sessions: lots\n")
    result = run("--config", str(cfg), "config", "validate")
    assert result.returncode != 0 and "engine.max_sessions" in result.stderr


def test_config_validate_ok_and_warns_on_disabled_plugin(tmp_path: Path) -> None:
    cfg = tmp_path / "h.yaml"
    cfg.write_text("plugins:\n  cron: {jobs: []}\n")
    result = run(
        "--config", str(cfg), "config", "validate", env={"HOTPLEX_DISABLE_PLUGINS": "cron"}
    )
    assert result.returncode == 0 and result.stdout.strip() == f"ok: {cfg}"
    assert "plugins.cron: plugin is disabled" in result.stderr


def test_config_show_redacts_secrets(tmp_path: Path) -> None:
    cfg = tmp_path / "h.yaml"
    cfg.write_text(
        "server:\n  admin_token: ${ADMIN}\n"
        "plugins:\n  slack: {enabled: true, bot_token: xoxb-secret-1, "
        "app_token: xapp-secret-2}\n"
    )
    result = run("--config", str(cfg), "config", "show", env={"ADMIN": "adm-secret-3-0123456789"})
    assert result.returncode == 0, result.stderr
    for secret in ("adm-secret-3-0123456789", "xoxb-secret-1", "xapp-secret-2"):
        assert secret not in result.stdout
    assert "admin_token: '**********'" in result.stdout
    assert "max_sessions: 32" in result.stdout


def test_config_file_found_in_cwd(tmp_path: Path) -> None:
    (tmp_path / "hotplex.yaml").write_text("server: {port: 9123}\n")
    result = run("config", "show", cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert "port: 9123" in result.stdout


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    result = run("--config", str(tmp_path / "nope.yaml"), "config", "validate")
    assert result.returncode == 1 and "config file not found" in result.stderr


@pytest.mark.parametrize("with_key", [False, True])
def test_doctor_reports_each_check(tmp_path: Path, with_key: bool) -> None:
    cfg = tmp_path / "h.yaml"
    cfg.write_text(f"engine: {{data_dir: {tmp_path / 'data'}}}\n")
    env = {"HOME": str(tmp_path), "ANTHROPIC_API_KEY": "sk-test" if with_key else ""}
    result = run("--config", str(cfg), "doctor", env=env)
    lines = result.stdout.splitlines()
    names = [line.split()[1] for line in lines if line[:4] in ("ok  ", "FAIL", "warn")]
    assert names[:2] == ["config", "python"] and "storage" in names
    credentials = next(line for line in lines if " credentials " in line)
    if with_key:
        assert credentials.startswith("ok")
    else:
        assert credentials.startswith("FAIL")
        assert "export ANTHROPIC_API_KEY" in result.stdout
        assert result.returncode == 1


@pytest.mark.parametrize("config_after_serve", [False, True])
def test_serve_starts_answers_and_stops_on_sigterm(
    tmp_path: Path, config_after_serve: bool
) -> None:
    import re
    import signal
    import urllib.request

    cfg = tmp_path / "h.yaml"
    cfg.write_text(f"engine: {{data_dir: {tmp_path / 'data'}}}\nserver: {{port: 0}}\n")
    env = {**os.environ, "HOTPLEX_DISABLE_PLUGINS": ""}
    env.pop("HOTPLEX_CONFIG", None)
    given = ["--config", str(cfg)]
    order = ["serve", *given] if config_after_serve else [*given, "serve"]
    proc = subprocess.Popen([*HOTPLEX, *order], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # bounded by the test timeout
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line + proc.stderr.read() if proc.stderr else line
        url = f"http://127.0.0.1:{match.group(1)}/healthz"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_serve_refuses_an_open_bind_without_api_keys(tmp_path: Path) -> None:
    result = run("serve", "--host", "0.0.0.0", "--port", "0", env={"HOME": str(tmp_path)})
    assert result.returncode == 1 and "server.api_keys is empty" in result.stderr
