"""``/readyz`` and ``/metrics``."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

import pytest
from gateway_kit import ADMIN_TOKEN, Harness, HarnessFactory, read_sse
from prometheus_client import REGISTRY

from hotplex.errors import StorageError
from hotplex.events import AuditEvent
from hotplex.gateway import observability
from hotplex.gateway.observability import METRICS_KEY

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def scrape(h: Harness) -> str:
    async with h.client.get("/metrics", headers=ADMIN) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return await response.text()


def value(text: str, sample: str) -> float:
    """The value of one sample line, e.g. ``hotplex_turns_total{status="ok"}``."""
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    assert match, f"{sample} not in:\n{text}"
    return float(match.group(1))


async def test_readyz_ready_with_detail_for_admins(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        async with h.client.get("/readyz", headers=ADMIN) as response:
            assert response.status == 200
            assert await response.json() == {"status": "ready", "storage": "ok", "adapters": {}}
        async with h.client.get("/readyz") as response:  # anyone: the status only
            assert response.status == 200
            assert await response.json() == {"status": "ready"}


async def test_readyz_503_when_storage_fails(gateway: HarnessFactory) -> None:
    async with gateway() as h:

        async def broken() -> None:
            raise StorageError("the database is gone")

        h.storage.ping = broken  # type: ignore[method-assign]
        async with h.client.get("/readyz", headers=ADMIN) as response:
            assert response.status == 503
            body = await response.json()
        assert body["status"] == "not_ready" and body["storage"] == "error"
        assert body["reasons"] == ["storage: the database is gone"]
        async with h.client.get("/readyz") as response:
            assert response.status == 503
            assert await response.json() == {"status": "not_ready"}


async def test_readyz_bounds_the_storage_ping(
    gateway: HarnessFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(observability, "READY_TIMEOUT", 0.05)
    async with gateway() as h:

        async def hangs() -> None:
            await asyncio.sleep(60)

        h.storage.ping = hangs  # type: ignore[method-assign]
        async with asyncio.timeout(5):
            async with h.client.get("/readyz", headers=ADMIN) as response:
                assert response.status == 503
                assert (await response.json())["storage"] == "timeout"


async def test_metrics_needs_the_admin_token(gateway: HarnessFactory) -> None:
    async with gateway() as h, h.client.get("/metrics") as response:
        assert response.status == 401


async def test_metrics_after_a_turn(
    gateway: HarnessFactory, wait_for: Callable[..., Awaitable[None]]
) -> None:
    async with gateway() as h:
        async with h.post("/api/v1/execute", {"session_id": "s1", "prompt": "a b c"}) as r:
            await read_sse(r)
        metrics = h.client.server.app[METRICS_KEY]
        await wait_for(lambda: metrics.turns.labels("ok")._value.get() == 1)
        text = await scrape(h)
        assert value(text, 'hotplex_turns_total{status="ok"}') == 1
        assert value(text, "hotplex_turn_duration_seconds_count") == 1
        assert value(text, "hotplex_first_token_seconds_count") == 1
        assert value(text, 'hotplex_tokens_total{kind="input"}') == 3
        assert value(text, 'hotplex_tokens_total{kind="output"}') == 2
        assert value(text, "hotplex_cost_usd_total") == 0
        assert value(text, 'hotplex_events_total{type="text_delta"}') == 2
        assert value(text, "hotplex_sessions_created_total") == 1
        assert value(text, 'hotplex_audit_events_total{type="session.created"}') == 1
        assert value(text, 'hotplex_sessions{state="idle"}') == 1
        assert value(text, "hotplex_agent_processes") == 1
        assert value(text, 'hotplex_sink_dropped_items_total{sink="metrics"}') == 0
        assert value(text, "hotplex_uptime_seconds") >= 0


async def test_audit_metrics_by_rule_and_decision(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        metrics = h.client.server.app[METRICS_KEY]
        metrics.observe(AuditEvent("waf.verdict", {"rule_id": "shell.rm_rf", "action": "block"}))
        metrics.observe(AuditEvent("waf.verdict", {"action": "allow"}))  # no rule: type only
        metrics.observe(AuditEvent("approval.decided", {"decision": "deny"}))
        text = await scrape(h)
        assert value(text, 'hotplex_waf_verdicts_total{action="block",rule_id="shell.rm_rf"}') == 1
        assert value(text, 'hotplex_audit_events_total{type="waf.verdict"}') == 2
        assert value(text, 'hotplex_approvals_decided_total{decision="deny"}') == 1


async def test_each_app_has_its_own_registry(gateway: HarnessFactory) -> None:
    async with gateway() as h:
        registry = h.client.server.app[METRICS_KEY].registry
        assert registry is not REGISTRY
        assert REGISTRY.get_sample_value("hotplex_turns_total", {"status": "ok"}) is None
