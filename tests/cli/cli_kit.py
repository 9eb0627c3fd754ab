"""What the CLI tests share: a config for a live ``hotplex serve`` with the fake Claude CLI
and SQLite, its keys, a free port, and the running daemon."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import yaml

from hotplex.testing.daemon import Daemon
from hotplex.testing.fake_agent import write_wrapper

KEY = "k-cli-0123456789"
TOKEN = "admin-cli-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_config(tmp_path: Path, **server: Any) -> Path:
    config = {
        "engine": {"data_dir": str(tmp_path / "data"), "kill_grace": "1s"},
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'data' / 'hotplex.db'}"},
        "provider": {"binary": str(write_wrapper(tmp_path / "bin"))},
        "server": {
            "port": 0,
            "api_keys": [{"name": "tester", "key": KEY}],
            "admin_token": TOKEN,
            "rate_limit": {"enabled": False},
            **server,
        },
    }
    path = tmp_path / "hotplex.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@asynccontextmanager
async def running_daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    """``hotplex serve`` on the config above; it must exit 0 when stopped."""
    running = Daemon(write_config(tmp_path), env={"CLAUDE_CONFIG_DIR": str(tmp_path / "claude")})
    await running.start()
    try:
        yield running
    finally:
        assert await running.stop() == 0
