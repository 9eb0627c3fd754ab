"""``/readyz`` and ``/metrics``: is the daemon ready, and Prometheus metrics.

Metrics live in a :class:`~prometheus_client.CollectorRegistry` owned by the application
(never the process-wide default registry). Event-driven metrics (turns, latencies, tokens,
audit counts) are fed by a ``metrics`` sink (``on_overflow="drop"``: under load a scrape may
miss some events, the hot path never waits). The gateway adds that sink by registering a
small plugin object on the runtime's plugin manager *before* the runtime starts, so the
sink runs in the runtime's :class:`~hotplex.sinks.SinkRunner` like any other. Gauges
(sessions by state, live processes, dropped sink items, uptime) are read from the engine
and the sink runner at scrape time.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hotplex import hookimpl
from hotplex.engine import ENGINE
from hotplex.events import AgentEvent, AuditEvent
from hotplex.gateway.auth import is_admin, protect
from hotplex.interfaces import ChatAdapter, HookSink
from hotplex.records import SinkSpec
from hotplex.runtime import Runtime
from hotplex.services import STORAGE

__all__ = ["METRICS_KEY", "Metrics", "MetricsSink", "add_observability_routes"]

#: How long ``/readyz`` waits for the storage ping.
READY_TIMEOUT = 2.0
#: How many unfinished turns the first-token tracker remembers (oldest forgotten first).
MAX_OPEN_TURNS = 10_000
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)
STATES = ("idle", "running", "stopped")


class _LiveCollector(Collector):
    """Values read at scrape time from the engine and the sink runner."""

    def __init__(self, runtime: Runtime, started: float) -> None:
        self._runtime = runtime
        self._started = started

    def collect(self) -> Iterable[Metric]:
        uptime = GaugeMetricFamily("hotplex_uptime_seconds", "Seconds since the app was built.")
        uptime.add_metric([], time.monotonic() - self._started)
        yield uptime
        engine = self._runtime.ctx.services.find(ENGINE)
        if engine is not None:
            live = GaugeMetricFamily("hotplex_agent_processes", "Live agent processes.")
            live.add_metric([], engine.live_processes)
            yield live
            counts = dict.fromkeys(STATES, 0)
            for info in engine.sessions():
                counts[info.state] = counts.get(info.state, 0) + 1
            sessions = GaugeMetricFamily(
                "hotplex_sessions", "Sessions the engine holds, by state.", labels=["state"]
            )
            for state, count in sorted(counts.items()):
                sessions.add_metric([state], count)
            yield sessions
        dropped = CounterMetricFamily(
            "hotplex_sink_dropped_items", "Items a sink's full queue dropped.", labels=["sink"]
        )
        failures = CounterMetricFamily(
            "hotplex_sink_failed_batches", "Batches a sink failed on.", labels=["sink"]
        )
        for name, stats in sorted(self._runtime.sinks.stats().items()):
            dropped.add_metric([name], stats["dropped"])
            failures.add_metric([name], stats["failures"])
        yield dropped
        yield failures


class Metrics:
    """The application's metrics and how events update them."""

    def __init__(self, runtime: Runtime) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sessions_created = Counter(
            "hotplex_sessions_created", "Sessions created (audit session.created).", registry=r
        )
        self.turns = Counter("hotplex_turns", "Finished turns, by status.", ["status"], registry=r)
        self.turn_seconds = Histogram(
            "hotplex_turn_duration_seconds",
            "Turn start to done.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.first_token_seconds = Histogram(
            "hotplex_first_token_seconds",
            "Turn start to the first text_delta.",
            buckets=FIRST_TOKEN_BUCKETS,
            registry=r,
        )
        self.tokens = Counter("hotplex_tokens", "Tokens used, by kind.", ["kind"], registry=r)
        self.cost = Counter("hotplex_cost_usd", "Cost reported by the agents.", registry=r)
        self.events = Counter("hotplex_events", "AgentEvents seen, by type.", ["type"], registry=r)
        self.audit = Counter("hotplex_audit_events", "Audit events, by type.", ["type"], registry=r)
        self.waf = Counter(
            "hotplex_waf_verdicts",
            "WAF verdicts, by rule and action.",
            ["rule_id", "action"],
            registry=r,
        )
        self.approvals = Counter(
            "hotplex_approvals_decided",
            "Approval decisions, by decision.",
            ["decision"],
            registry=r,
        )
        r.register(_LiveCollector(runtime, time.monotonic()))
        #: turn_id -> ts of its first text_delta, until its done arrives
        self._first_delta: OrderedDict[str, float] = OrderedDict()

    def observe(self, item: AgentEvent | AuditEvent) -> None:
        if isinstance(item, AuditEvent):
            self._observe_audit(item)
        else:
            self._observe_event(item)

    def _observe_event(self, event: AgentEvent) -> None:
        self.events.labels(event.type).inc()
        data = event.data
        if event.type == "text_delta" and event.turn_id:
            if event.turn_id not in self._first_delta:
                self._first_delta[event.turn_id] = event.ts
                while len(self._first_delta) > MAX_OPEN_TURNS:
                    self._first_delta.popitem(last=False)
        elif event.type == "usage":
            for kind in ("input", "output", "cache_read", "cache_write"):
                value = data.get(f"{kind}_tokens")
                if isinstance(value, int | float) and value > 0:
                    self.tokens.labels(kind).inc(value)
            cost = data.get("cost_usd")
            if isinstance(cost, int | float) and cost > 0:
                self.cost.inc(cost)
        elif event.type == "done":
            self.turns.labels(str(data.get("status", "unknown"))).inc()
            duration = max(0.0, float(data.get("duration_ms", 0)) / 1000)
            self.turn_seconds.observe(duration)
            first = self._first_delta.pop(event.turn_id, None)
            if first is not None:  # the turn started duration before its done
                self.first_token_seconds.observe(max(0.0, first - (event.ts - duration)))

    def _observe_audit(self, event: AuditEvent) -> None:
        self.audit.labels(event.type).inc()
        data = event.data
        if event.type == "session.created":
            self.sessions_created.inc()
        elif event.type == "waf.verdict" and data.get("rule_id"):
            self.waf.labels(str(data["rule_id"]), str(data.get("action", ""))).inc()
        elif event.type == "approval.decided":
            self.approvals.labels(str(data.get("decision", "unknown"))).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsSink(HookSink):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def handle(self, batch: Sequence[AgentEvent | AuditEvent]) -> None:
        for item in batch:
            self.metrics.observe(item)


class _MetricsPlugin:
    """Registers the app's metrics sink with the runtime's plugins (see the module doc)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    @hookimpl
    def hotplex_register_sinks(self) -> list[SinkSpec]:
        return [SinkSpec("metrics", lambda ctx: MetricsSink(self._metrics), on_overflow="drop")]


METRICS_KEY = web.AppKey("metrics", Metrics)


async def readyz(request: web.Request) -> web.Response:
    """200 when the engine runs and storage answers a ping within 2 s, else 503. Anyone
    gets the status; an admin (or loopback without a token) also gets the detail."""
    runtime = request.app[_RUNTIME_KEY]
    reasons: list[str] = []
    detail: dict[str, object] = {}
    if runtime.ctx.services.find(ENGINE) is None:
        reasons.append("engine: not running")
    storage = runtime.ctx.services.find(STORAGE)
    if storage is None:
        detail["storage"] = "none"
    else:
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                await storage.ping()
            detail["storage"] = "ok"
        except TimeoutError:
            detail["storage"] = "timeout"
            reasons.append(f"storage: no answer within {READY_TIMEOUT:g}s")
        except Exception as exc:
            detail["storage"] = "error"
            reasons.append(f"storage: {exc}")
    detail["adapters"] = {name: _state(a) for name, a in sorted(runtime.adapters.items())}
    body: dict[str, object] = {"status": "not_ready" if reasons else "ready"}
    if is_admin(runtime.settings, request):
        body.update(detail)
        if reasons:
            body["reasons"] = reasons
    return web.json_response(body, status=503 if reasons else 200)


def _state(adapter: ChatAdapter) -> str:
    try:
        return adapter.state()
    except Exception as exc:
        return f"error: {exc}"


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS_KEY].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


_RUNTIME_KEY = web.AppKey("observability_runtime", Runtime)


def add_observability_routes(app: web.Application, runtime: Runtime) -> Metrics:
    """Add ``/readyz`` (open; detail for admins) and ``/metrics`` (admin), and the metrics
    sink. Call before the runtime starts (at build time)."""
    found = Metrics(runtime)
    app[METRICS_KEY] = found
    app[_RUNTIME_KEY] = runtime
    runtime.ctx.plugins.register(_MetricsPlugin(found), "gateway-metrics")
    app.router.add_get("/readyz", readyz, name="readyz")
    app.router.add_get("/metrics", protect(runtime.settings, "admin", metrics), name="metrics")
    return found
