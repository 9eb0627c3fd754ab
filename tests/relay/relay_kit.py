"""What the relay tests share: two (or more) ``hotplex serve`` daemons on loopback, each a
relay peer of the others, with the fake agent CLI, SQLite, the file-backed chat platform
and the web chat; signed requests made by hand; polling another process's files."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from hotplex_relay.signing import signed_headers

from hotplex.testing.daemon import Daemon
from hotplex.testing.distributions import write_distribution
from hotplex.testing.fake_agent import write_wrapper
from hotplex.testing.file_chat import read_outbox

KEY = "k-relay-0123456789"
TOKEN = "admin-relay-0123456789"
SECRETS = {
    frozenset({"a", "b"}): "secret-a-b-0123456789",
    frozenset({"a", "c"}): "secret-a-c-0123456789",
}
POLL = 0.05


def secret(x: str, y: str) -> str:
    return SECRETS.get(frozenset({x, y}), f"secret-{min(x, y)}-{max(x, y)}-0123456789")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Bot:
    """One daemon: its relay name, port, chat folder and config."""

    name: str
    root: Path
    port: int = field(default_factory=free_port)
    daemon: Daemon | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def relay_url(self) -> str:
        return f"{self.url}/relay/v1"

    @property
    def chat(self) -> Path:
        return self.root / "chat"

    def outbox(self) -> list[dict[str, Any]]:
        return read_outbox(self.chat)


def write_config(
    bot: Bot,
    peers: Mapping[str, str],
    *,
    agent: tuple[str, ...] = (),
    binary: Path | None = None,
    relay: Mapping[str, Any] | None = None,
    policy: Any = "deny",
    provider: Mapping[str, Any] | None = None,
    rate_limit: Mapping[str, Any] | None = None,
) -> Path:
    """The config of ``bot``; ``peers`` maps each peer's name to its relay URL."""
    bot.chat.mkdir(parents=True, exist_ok=True)
    config = {
        "engine": {"data_dir": str(bot.root / "data"), "kill_grace": "1s"},
        "storage": {"url": f"sqlite+aiosqlite:///{bot.root / 'data' / 'hotplex.db'}"},
        "provider": {
            "binary": str(binary or write_wrapper(bot.root / "bin", *agent)),
            **(provider or {}),
        },
        "server": {
            "host": "127.0.0.1",
            "port": bot.port,
            "api_keys": [{"name": "tester", "key": KEY}],
            "admin_token": TOKEN,
            "rate_limit": {"enabled": False},
        },
        "plugins": {
            "filechat": {"enabled": True, "directory": str(bot.chat)},
            "relay": {
                "name": bot.name,
                "connect_timeout": "2s",
                "idle_timeout": "5s",
                "heartbeat": "1s",
                "peers": [
                    {
                        "name": n,
                        "url": u,
                        "secret": secret(bot.name, n),
                        "policy": policy,
                        **({"rate_limit": dict(rate_limit)} if rate_limit else {}),
                    }
                    for n, u in peers.items()
                ],
                **(relay or {}),
            },
        },
    }
    path = bot.root / "hotplex.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def daemon_env(root: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    site = root / "site"
    write_distribution(
        site,
        "filechat-testing",
        entry_points={"hotplex": {"filechat": "hotplex.testing.file_chat"}},
    )
    return {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
        "CLAUDE_CONFIG_DIR": str(root / "claude"),
        "ANTHROPIC_API_KEY": "sk-unused-by-the-fake-agent",
        **(extra or {}),
    }


@asynccontextmanager
async def running(
    bot: Bot, config: Path, env: Mapping[str, str] | None = None
) -> AsyncIterator[Daemon]:
    daemon = Daemon(config, env=daemon_env(bot.root, env))
    bot.daemon = daemon
    await daemon.start()
    try:
        yield daemon
    finally:
        if daemon.proc is not None and daemon.proc.returncode is None:
            assert await daemon.stop() == 0, "".join(daemon.log[-40:])


async def until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll (another process's files, an HTTP API) until ``condition()`` is truthy."""
    try:
        async with asyncio.timeout(timeout):
            while not (found := await _call(condition)):
                await asyncio.sleep(POLL)
            return found
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def _call(condition: Callable[[], Any]) -> Any:
    result = condition()
    return await result if asyncio.iscoroutine(result) else result


def shown(calls: list[dict[str, Any]], address: str) -> dict[str, str]:
    """Message id -> the text it shows last, in ``address``."""
    latest: dict[str, str] = {}
    for call in calls:
        if call["method"] in ("send", "update") and call["address"] == address:
            latest[call["id"]] = call["text"]
    return latest


async def admin(bot: Bot, method: str, path: str, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, bot.url + path, json=body, headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


async def web_messages(bot: Bot, address: str) -> list[str]:
    """The texts delivered into the web chat session ``address`` (its ``message`` events)."""
    sessions = (await admin(bot, "GET", "/admin/v1/sessions"))["sessions"]
    ids = [s["session_id"] for s in sessions if s["address"] == address]
    if not ids:
        return []
    events = (await admin(bot, "GET", f"/admin/v1/sessions/{ids[0]}/events"))["events"]
    return [e["data"]["text"] for e in events if e["type"] == "message"]


async def audit(bot: Bot, kind: str) -> list[dict[str, Any]]:
    found = await admin(bot, "GET", f"/admin/v1/audit?type={kind}")
    records: list[dict[str, Any]] = found["audit"] if isinstance(found, dict) else found
    return records


def signed(
    sender: str,
    to: Bot,
    body: dict[str, Any],
    *,
    key: str | None = None,
    clock: Callable[[], float] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A request body and its headers as peer ``sender`` signs it (with ``key``, by
    default the secret ``sender`` shares with ``to``)."""
    raw = json.dumps(body).encode()
    kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
    headers = signed_headers(
        (key or secret(sender, to.name)).encode(),
        sender=sender, method="POST", path="/relay/v1/ask", body=raw, **kwargs,
    )  # fmt: skip
    return raw, {**headers, "Content-Type": "application/json"}


async def post_ask(to: Bot, raw: bytes, headers: Mapping[str, str]) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{to.relay_url}/ask", data=raw, headers=dict(headers)) as response,
    ):
        return response.status, await response.text()


def ask_body(sender: str, prompt: str, conversation: str = "filechat:w/D1") -> dict[str, Any]:
    return {"prompt": prompt, "chain": [{"peer": sender, "conversation": conversation}], "hops": 1}
