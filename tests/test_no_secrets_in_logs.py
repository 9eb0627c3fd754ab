"""No configured secret ever reaches the daemon's log, even at DEBUG, nor the agent's
environment: a real ``hotplex --log-level DEBUG serve`` runs one turn over the WebSocket
with the API key, refuses a wrong key, answers an admin call; then its whole output and the
fake agent's environment dump are searched for every secret string."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest
import yaml

from hotplex.testing.daemon import Daemon
from hotplex.testing.fake_agent import write_wrapper

SECRETS = {
    "server.api_keys[0].key": "sk-apikey-Q7w9e2r4t6y8",
    "server.admin_token": "adm-token-Z3x5c7v9b1n2",
    "plugins.slack.bot_token": "xoxb-bot-M4k6j8h0g2f4",
    "plugins.slack.app_token": "xapp-app-P1o3i5u7y9t1",
    "plugins.slack.signing_secret": "sign-secret-L2k4j6h8g0",
    "plugins.webhook.subscriptions[0].secret": "whsec_aG9vay1zZWNyZXQtUjVlN3c5cTFhM3M1",
}
WRONG_KEY = "sk-wrong-but-close-000"
PLAIN_ENV = ("HOTPLEX_TEST_PLAIN", "plain-value-visible-42")


def write_config(tmp_path: Path, dump: Path) -> Path:
    config = {
        "engine": {"data_dir": str(tmp_path / "data"), "kill_grace": "1s"},
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'data' / 'hotplex.db'}"},
        "provider": {
            "binary": str(write_wrapper(tmp_path / "bin", "--fake-dump-env", str(dump))),
            "env": {PLAIN_ENV[0]: PLAIN_ENV[1]},
        },
        "server": {
            "port": 0,
            "api_keys": [{"name": "tester", "key": SECRETS["server.api_keys[0].key"]}],
            "admin_token": SECRETS["server.admin_token"],
            "rate_limit": {"enabled": False},
        },
        "plugins": {
            "slack": {
                "enabled": False,
                "bot_token": SECRETS["plugins.slack.bot_token"],
                "app_token": SECRETS["plugins.slack.app_token"],
                "signing_secret": SECRETS["plugins.slack.signing_secret"],
            },
            "webhook": {
                "subscriptions": [
                    {
                        "url": "https://receiver.example/hook",
                        "secret": SECRETS["plugins.webhook.subscriptions[0].secret"],
                    }
                ]
            },
        },
    }
    path = tmp_path / "hotplex.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _get(url: str, token: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def leaks(text: str) -> list[str]:
    return [name for name, value in SECRETS.items() if value in text]


@pytest.mark.timeout(120)
async def test_no_secret_in_debug_log_or_agent_env(tmp_path: Path) -> None:
    dump = tmp_path / "agent-env.json"
    env = {"CLAUDE_CONFIG_DIR": str(tmp_path / "claude"), "HOTPLEX_LOG_LEVEL": "DEBUG"}
    daemon = Daemon(write_config(tmp_path, dump), env=env)
    await daemon.start()
    stopped = False
    try:
        async with daemon.client(SECRETS["server.api_keys[0].key"]) as ws:
            frames = await ws.execute("s1", "hello")
        assert frames[-1]["data"]["status"] == "ok"
        assert any(f["type"] == "text" and f["data"]["text"] == "echo: hello" for f in frames)

        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(
                    f"{daemon.url}/ws/v1/agent", headers={"Authorization": f"Bearer {WRONG_KEY}"}
                )
        assert refused.value.status == 401

        status, body = await asyncio.to_thread(
            _get, f"{daemon.url}/admin/v1/stats", SECRETS["server.admin_token"]
        )
        assert status == 200, body
        assert leaks(body) == []
        status, _ = await asyncio.to_thread(
            _get, f"{daemon.url}/admin/v1/stats", SECRETS["server.api_keys[0].key"]
        )
        assert status == 401
        assert await daemon.stop() == 0
        stopped = True
    finally:
        if not stopped:
            await daemon.kill()

    log = "".join(daemon.log)
    assert " DEBUG " in log, "the daemon did not log at DEBUG"
    assert leaks(log) == [], f"secrets in the daemon log: {leaks(log)}"

    agent_env = json.loads(dump.read_text())
    assert agent_env.get(PLAIN_ENV[0]) == PLAIN_ENV[1]  # provider.env reaches the agent
    dumped = json.dumps(agent_env)
    assert leaks(dumped) == [], f"secrets in the agent environment: {leaks(dumped)}"
