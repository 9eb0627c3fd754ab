"""What the webhook tests share: secrets, a running HotPlex with the webhook plugin, and an
aiohttp test client on the plugin's routes."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import hotplex_webhook.plugin as webhook_plugin
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hotplex.gateway import RUNTIME_KEY
from hotplex.testing.fakes import FakeProvider
from hotplex.testing.running import RunningHotPlex, running_hotplex

SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 24).decode()
GITHUB_SECRET = "gh-secret-0123456789"


def subscription(url: str, **fields: Any) -> dict[str, Any]:
    return {"name": "rx", "url": url, "secret": SECRET, "timeout": "2s", **fields}


@asynccontextmanager
async def webhook_hotplex(
    tmp_path: Path,
    webhook: Mapping[str, Any],
    *,
    provider: FakeProvider | None = None,
    **config: Any,
) -> AsyncIterator[RunningHotPlex]:
    """A running HotPlex (fake agent, fake chat) with ``plugins.webhook`` = ``webhook``."""
    async with running_hotplex(
        tmp_path,
        config={"plugins": {"webhook": dict(webhook)}, **config},
        plugins=[("webhook", webhook_plugin)],
        provider=provider,
    ) as hp:
        yield hp


@asynccontextmanager
async def routes_client(
    hp: RunningHotPlex,
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """The plugin's routes (no gateway guards) on a test server."""
    app = web.Application()
    app[RUNTIME_KEY] = hp.runtime
    for spec in webhook_plugin.hotplex_register_routes():
        app.router.add_route(spec.method, spec.path, spec.handler)
    async with TestClient(TestServer(app)) as client:
        yield client
