"""Composes a running instance from settings and plugins.

``async with Runtime(settings, plugins) as rt`` enters, in order: the start-up resources
(``hotplex_startup``; core's come first: the sinks, then the engine), the middleware chain
and the enabled chat adapters. Leaving runs the shutdown callbacks, stops the adapters and
exits the resources in reverse order (the engine before the sinks drain). Nothing is torn
down that was not started.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import Any

from hotplex.aio import cancel_and_wait
from hotplex.commands import ChatCommands
from hotplex.config import Settings, plugin_enabled
from hotplex.context import PluginContext, ServiceKey
from hotplex.errors import ConfigError, HotplexError, PluginUnavailableError
from hotplex.events import AgentEvent, AuditEvent
from hotplex.interfaces import ChatAdapter, MiddlewareContext, Storage
from hotplex.middleware import MiddlewareChain
from hotplex.plugins import HotplexPluginManager
from hotplex.sinks import SinkRunner
from hotplex.templating import TEMPLATES, make_environment
from hotplex.types import IncomingMessage

__all__ = ["RUNTIME", "OnMessage", "OnReplay", "Runtime", "make_storage"]

log = logging.getLogger(__name__)

OnMessage = Callable[[ChatAdapter, IncomingMessage], Awaitable[object]]
OnReplay = Callable[[ChatAdapter, IncomingMessage], Awaitable[object]]


def make_storage(ctx: PluginContext, url: str | None = None) -> Storage:
    """The storage backend registered for the URL's scheme (not yet opened)."""
    url = url or ctx.settings.storage_url
    scheme = url.split("://", 1)[0]
    backends = ctx.plugins.storages()
    spec = backends.get(scheme)
    if spec is None:
        known = ", ".join(sorted(backends)) or "none"
        raise ConfigError(
            f"storage.url: no storage backend handles {scheme!r} (installed: {known})",
            path="storage.url",
        )
    return spec.factory(ctx, url)


class Runtime:
    def __init__(
        self,
        settings: Settings,
        plugins: HotplexPluginManager,
        *,
        on_message: OnMessage | None = None,
    ) -> None:
        self.ctx = PluginContext(settings=settings, plugins=plugins)
        self.ctx.services.set(RUNTIME, self)
        #: what an adapter's ``deliver`` calls (core's chat bridge sets it when not given)
        self.on_message = on_message
        #: how a stored, unfinished message of an adapter's platform runs again
        self.on_replay: OnReplay | None = None
        #: set once every start-up resource, the middleware and the adapters are up
        self.started = asyncio.Event()
        self._middleware_names: frozenset[str] = frozenset()
        self._stack = AsyncExitStack()
        self.sinks = SinkRunner({})
        self.middleware = MiddlewareChain(())
        self.chat_commands = ChatCommands({})
        self.adapters: dict[str, ChatAdapter] = {}
        #: True once every enabled adapter was started (the delivery router then knows
        #: every platform there will be)
        self.adapters_started = False
        #: platform -> how to run a stored, unfinished inbound message again after a crash
        self.replayers: dict[str, Callable[[IncomingMessage], Awaitable[None]]] = {}
        self._adapter_tasks: list[asyncio.Task[None]] = []
        self._shutdown = plugins.shutdown_callbacks

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    def enabled(self, plugin: str) -> bool:
        return plugin_enabled(self.settings, plugin)

    def _check_available(self) -> None:
        for info in self.ctx.plugins.plugins():
            if info.loaded and not info.available and self.enabled(info.name):
                raise PluginUnavailableError(
                    f"plugin {info.name!r} is enabled but unavailable: {info.reason}"
                )

    async def __aenter__(self) -> Runtime:
        plugins = self.ctx.plugins
        plugins.check()
        self._check_available()
        try:
            for spec in plugins.startup_resources():
                log.debug("starting resource %s", spec.name)
                await self._stack.enter_async_context(spec.factory(self.ctx))
            specs = plugins.middleware()
            self._middleware_names = frozenset(m.name for m in specs)
            self.middleware = MiddlewareChain([m.factory(self.ctx) for m in specs])
            self.chat_commands = ChatCommands(plugins.chat_commands())
            self.ctx.services.set(TEMPLATES, make_environment(plugins.templates()))
            self._start_adapters()
        except BaseException:
            await self._stack.aclose()
            raise
        self.started.set()
        return self

    def has_middleware(self, name: str) -> bool:
        """Whether a middleware registered as ``name`` (e.g. ``access``) is in the chain."""
        return name in self._middleware_names

    def _start_adapters(self) -> None:
        for name, spec in self.ctx.plugins.chat_adapters().items():
            if not self.enabled(name):
                continue
            adapter = spec.factory(self.ctx, self.settings.plugins[name])
            self.adapters[name] = adapter
            platform = adapter.platform or name
            if platform not in self.replayers:
                self.replayers[platform] = functools.partial(self._replay, adapter)
            task = asyncio.create_task(self._run_adapter(name, adapter), name=f"adapter:{name}")
            self._adapter_tasks.append(task)
        self.adapters_started = True

    async def _replay(self, adapter: ChatAdapter, message: IncomingMessage) -> None:
        if self.on_replay is None:
            raise HotplexError(f"nothing replays {message.platform} messages")
        await self.on_replay(adapter, message)

    async def _run_adapter(self, name: str, adapter: ChatAdapter) -> None:
        async def deliver(message: IncomingMessage) -> None:
            if self.on_message is not None:
                await self.on_message(adapter, message)
            else:
                log.warning("a %s message arrived; nothing dispatches it", name)

        try:
            await adapter.run(deliver)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("chat adapter %r stopped with an error", name)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for spec in self._shutdown():
            try:
                await asyncio.wait_for(spec.callback(self.ctx), spec.timeout)
            except Exception:
                log.exception("shutdown callback %r failed", spec.name)
        await cancel_and_wait(*self._adapter_tasks)
        await self._stack.aclose()

    @asynccontextmanager
    async def running_sinks(self) -> AsyncIterator[SinkRunner]:
        """Start every registered sink; on exit, drain and close them."""
        specs = self.ctx.plugins.sinks()
        self.sinks = SinkRunner({n: (s, s.factory(self.ctx)) for n, s in specs.items()})
        self.sinks.start()
        try:
            yield self.sinks
        finally:
            await self.sinks.aclose()

    async def emit(self, item: AgentEvent | AuditEvent) -> None:
        await self.sinks.emit(item)

    async def process_inbound(
        self,
        message: IncomingMessage,
        final: Callable[[MiddlewareContext], Awaitable[None]],
        *,
        replay: bool = False,
        facts: Mapping[str, Any] | None = None,
    ) -> MiddlewareContext:
        """Run an inbound message through the middleware chain, then ``final``. ``replay``
        marks a stored message run again after a crash (it is not recorded twice);
        ``facts`` start the context's facts (the gateway's ``request_id``, ``on_event``
        and ``unattended``: see hotplex/waf/asks.py)."""
        ctx = MiddlewareContext(message)
        ctx.facts.update(facts or {})
        ctx.facts["replay"] = replay
        await self.middleware.run(ctx, final)
        return ctx

    async def replay_inbound(self) -> int:
        """Run once more every stored message a crash left unfinished; how many."""
        from hotplex.services import STORAGE

        storage = self.ctx.services.find(STORAGE)
        if storage is None:
            return 0
        count = 0
        for message in await storage.pending_inbound():
            handler = self.replayers.get(message.platform)
            if handler is None:
                log.warning("no handler to replay a %s message; it stays pending", message.platform)
                continue
            log.info("replaying an unfinished %s message for %s", message.platform, message.address)
            try:
                await handler(message)
            except Exception:
                log.exception("replaying a %s message failed", message.platform)
            count += 1
        return count

    def tool_catalog(self) -> list[dict[str, Any]]:
        """The agent tools in MCP ``tools/list`` form."""
        return [
            {"name": t.name, "description": t.description, "inputSchema": dict(t.input_schema)}
            for t in self.ctx.plugins.agent_tools().values()
        ]


RUNTIME = ServiceKey("runtime", Runtime)
