"""Core's start-up resources, entered in this order by the runtime (``hotplex_startup``):
storage (opened and migrated), the sinks, the retention task, then the engine (the
configured provider, the WAF as a tool policy, the agent tools, events to the sinks and
"durable" waits on the storage sink). Each is an async context manager; leaving them runs
in reverse, so the engine stops before the sinks drain and storage closes last.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from hotplex.context import PluginContext
from hotplex.events import AgentEvent
from hotplex.records import ResourceSpec

if TYPE_CHECKING:
    from hotplex.chat.router import Endpoint
    from hotplex.interfaces import ChatAdapter
    from hotplex.runtime import Runtime

__all__ = ["core_resources", "run_delivery", "run_engine", "run_sinks", "run_storage"]


@asynccontextmanager
async def run_engine(ctx: PluginContext) -> AsyncIterator[None]:
    """The engine as a start-up resource: the configured provider, events to the sinks."""
    from hotplex.engine import ENGINE, Engine
    from hotplex.errors import ConfigError
    from hotplex.runtime import RUNTIME

    spec = ctx.plugins.providers().get(ctx.settings.provider.type)
    if spec is None:
        known = ", ".join(sorted(ctx.plugins.providers())) or "none"
        raise ConfigError(
            f"provider.type: {ctx.settings.provider.type!r} is not registered "
            f"(registered: {known})",
            path="provider.type",
        )
    from hotplex.services import STORAGE
    from hotplex.storage.sink import STORAGE_SINK

    runtime = ctx.services.find(RUNTIME)
    emit = runtime.emit if runtime is not None else None
    sink = ctx.services.find(STORAGE_SINK)

    async def durable(event: AgentEvent) -> None:
        if sink is not None:
            await sink.committed(event.session_id, event.seq)

    policies = []
    if ctx.settings.security.waf.enabled:
        from hotplex.waf.policy import WafToolPolicy, make_waf

        policies.append(WafToolPolicy(make_waf(ctx), emit))
    async with contextlib.AsyncExitStack() as stack:
        tools = ctx.plugins.agent_tools()
        if tools:  # before the engine, so every agent (spares too) gets the hotplex server
            from hotplex.agent_tools import AGENT_TOOLS, AgentToolBridge

            def resolve(session_id: str) -> tuple[str, str | None] | None:
                # a spare was started under its provider session id; find who took it
                engine = ctx.services.find(ENGINE)
                if engine is None:
                    return None
                session = engine.get(session_id)
                if session is not None:
                    return session.session_id, session.address
                for info in engine.sessions():
                    if info.provider_session_id == session_id:
                        return info.session_id, info.address
                return None

            bridge = AgentToolBridge(tools, ctx, resolve=resolve, audit=emit)
            await stack.enter_async_context(bridge)
            ctx.services.set(AGENT_TOOLS, bridge)
            stack.callback(ctx.services.remove, AGENT_TOOLS)
        engine = await stack.enter_async_context(
            Engine(
                ctx.settings,
                spec.factory(ctx),
                emit=emit,
                policies=policies,
                store=ctx.services.find(STORAGE),
                durable=durable if sink is not None else None,
            )
        )
        ctx.services.set(ENGINE, engine)
        try:
            yield
        finally:
            ctx.services.remove(ENGINE)


def _adapter_endpoint(runtime: Runtime, platform: str) -> Endpoint | None:
    """The endpoint of the running adapter that owns ``platform`` (its ``platform``
    attribute, else the name it was registered under)."""
    for name, adapter in runtime.adapters.items():
        if (adapter.platform or name) == platform:
            return _endpoint_of(adapter)
    return None


def _endpoint_of(adapter: ChatAdapter) -> Endpoint:
    from hotplex.chat.router import Endpoint

    return Endpoint(adapter.operations, lambda: adapter.state() == "connected", adapter.state)


@asynccontextmanager
async def run_delivery(ctx: PluginContext) -> AsyncIterator[None]:
    """The delivery router (service ``DELIVERY``): first, so every plugin's resources and
    adapters find it; the runtime's adapters by platform, and the web chat's sessions."""
    from hotplex.chat.router import DELIVERY, Router
    from hotplex.runtime import RUNTIME
    from hotplex.web.operations import WebOperations

    runtime = ctx.services.find(RUNTIME)
    if runtime is None:
        router = Router()
    else:
        router = Router(
            lambda platform: _adapter_endpoint(runtime, platform),
            sealed=lambda: runtime.adapters_started,
            audit=runtime.emit,
        )
    web = WebOperations.for_services(ctx.services)
    router.attach("web", web, ready=web.ready)
    ctx.services.set(DELIVERY, router)
    try:
        yield
    finally:
        ctx.services.remove(DELIVERY)
        await router.aclose()


@asynccontextmanager
async def run_storage(ctx: PluginContext) -> AsyncIterator[None]:
    """The storage backend for ``storage.url``, opened (migrated) for the daemon's life;
    nothing with ``storage.enabled: false`` (service ``STORAGE`` stays unset)."""
    from hotplex.runtime import make_storage
    from hotplex.services import STORAGE

    if not ctx.settings.storage.enabled:
        yield
        return
    storage = make_storage(ctx)
    await storage.open()
    ctx.services.set(STORAGE, storage)
    try:
        yield
    finally:
        ctx.services.remove(STORAGE)
        await storage.close()


@asynccontextmanager
async def run_sinks(ctx: PluginContext) -> AsyncIterator[None]:
    from hotplex.runtime import RUNTIME

    runtime = ctx.services.find(RUNTIME)
    if runtime is None:
        yield
        return
    async with runtime.running_sinks():
        yield


@asynccontextmanager
async def run_chat(ctx: PluginContext) -> AsyncIterator[None]:
    """The chat bridge (service ``CHAT_BRIDGE``): every enabled adapter's messages and
    their crash replay go through it, unless the runtime was given its own ``on_message``."""
    from hotplex.chat import CHAT_BRIDGE, ChatBridge
    from hotplex.engine import ENGINE
    from hotplex.runtime import RUNTIME

    runtime = ctx.services.find(RUNTIME)
    if runtime is None or ctx.services.find(ENGINE) is None:
        yield
        return
    bridge = ChatBridge(ctx, runtime)
    ctx.services.set(CHAT_BRIDGE, bridge)
    if runtime.on_message is None:
        runtime.on_message = bridge.handle
    if runtime.on_replay is None:
        runtime.on_replay = functools.partial(bridge.handle, replay=True)
    bridge.start()
    try:
        yield
    finally:
        await bridge.aclose()
        ctx.services.remove(CHAT_BRIDGE)


def core_resources() -> list[ResourceSpec]:
    """Storage outlives the sinks, the sinks outlive the engine (its last events still
    reach them), and plugin resources (entered after these) find the engine running."""
    from hotplex.storage.plugin import retention_resource

    return [
        ResourceSpec("delivery", run_delivery),
        ResourceSpec("storage", run_storage),
        ResourceSpec("sinks", run_sinks),
        retention_resource(),
        ResourceSpec("engine", run_engine),
        ResourceSpec("chat", run_chat),
    ]
