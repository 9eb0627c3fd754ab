"""The relay of one running instance (service ``RELAY``): its peers, the bindings, and the
three ways to ask a peer (the chat command ``/relay``, the agent tool ``relay``, the
admin route the CLI's ``hotplex relay send`` may use).

An answer for a conversation is posted through core's delivery router (``DELIVERY``) to
whichever adapter owns the address (``web``, Slack, Feishu, any chat plugin), rendered by
core's ``Renderer`` as it streams in, attributed to the peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any

from hotplex import AgentEvent, AuditEvent, UserFacingError
from hotplex.commands import ChatCommandContext
from hotplex.context import PluginContext, ServiceKey
from hotplex.records import ToolCallContext
from hotplex.types import IncomingMessage
from hotplex_relay.bindings import BindingStore, remote
from hotplex_relay.client import RelayClient, RelayError
from hotplex_relay.guard import Hop, RateLimit
from hotplex_relay.plugin import RelaySettings
from hotplex_relay.signing import NonceStore
from hotplex_relay.wire import Answer, Reception

__all__ = ["RELAY", "RelayService", "relay_command", "relay_resource", "relay_tool_call"]

log = logging.getLogger(__name__)

_CHAINS = 10_000  # relay conversations whose chain is remembered (for their agents' asks)


class RelayService:
    def __init__(self, ctx: PluginContext, settings: RelaySettings, bindings: BindingStore) -> None:
        self._ctx = ctx
        self.settings = settings
        self.name = settings.name
        self.bindings = bindings
        self.client = RelayClient(settings, audit=self.audit)
        self.nonces = NonceStore(settings.replay_window)
        self._inbound = {
            p.name: RateLimit(p.rate_limit.rate, p.rate_limit.burst) for p in settings.peers
        }
        self._chains: OrderedDict[str, tuple[Hop, ...]] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the receiving side's state ------------------------------------------------------

    def secret_for(self, peer: str) -> bytes | None:
        found = self.settings.peer(peer)
        return None if found is None else found.secret.get_secret_value().encode()

    def inbound_limit(self, peer: str) -> float:
        return self._inbound[peer].take()

    def remember_chain(self, address: str, chain: tuple[Hop, ...]) -> None:
        self._chains[address] = chain
        self._chains.move_to_end(address)
        while len(self._chains) > _CHAINS:
            self._chains.popitem(last=False)

    def chain_for(self, address: str | None) -> tuple[Hop, ...]:
        """The hops before this instance of a message asked from ``address``: the chain a
        relayed prompt came with when ``address`` is a relay conversation, else none."""
        return self._chains.get(address or "", ())

    async def audit(self, event: AuditEvent) -> None:
        from hotplex.runtime import RUNTIME

        runtime = self._ctx.services.find(RUNTIME)
        if runtime is not None:
            await runtime.emit(event)

    async def dropped(
        self, reason: str, chain: Sequence[Hop], *, to: str, side: str, actor: str | None
    ) -> None:
        log.warning("relay to %s dropped (%s side): %s", to, side, reason)
        data = {"reason": reason, "to": to, "side": side, "chain": [h.to_json() for h in chain]}
        await self.audit(AuditEvent("relay.dropped", data, actor=actor or "system"))

    # -- asking --------------------------------------------------------------------------

    def chain_from(self, address: str | None, label: str) -> tuple[Hop, ...]:
        return (*self.chain_for(address), Hop(self.name, label))

    async def ask(self, target: str, prompt: str, chain: Sequence[Hop], actor: str) -> Answer:
        """The whole answer (the agent tool); RelayError when it never started."""
        reception = Reception(target)
        async for _ in self.client.stream(target, prompt, chain, reception, actor=actor):
            pass
        return reception.answer

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` in the background, cancelled when the relay stops."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def ask_into(self, address: str, target: str, prompt: str, user: str) -> None:
        """Ask ``target`` in the background and render its answer into ``address``."""
        self.spawn(self._deliver(address, target, prompt, user), f"relay:{target}")

    async def _deliver(self, address: str, target: str, prompt: str, user: str) -> None:
        from hotplex.chat import DELIVERY, Renderer

        router = self._ctx.services.get(DELIVERY)
        chain = self.chain_from(address, address)
        reception = Reception(target)
        events = self.client.stream(target, prompt, chain, reception, actor=user)
        try:
            first = await anext(events)
        except (RelayError, StopAsyncIteration) as exc:
            with contextlib.suppress(Exception):
                await router.send(address, f"⚠️ /relay {target}: {exc or 'no answer'}")
            return
        try:
            await router.wait_for(address)
            renderer = Renderer(router.operations_for(address), address)
            await renderer.render(_prepend(first, events))
        except Exception:
            log.exception("rendering %s's answer into %s failed", target, address)
            return
        finally:
            await events.aclose()
        # shown in the bound conversations too, like an agent's answer
        await self.mirror(address, f"**{target}**", reception.answer.summary())

    async def mirror(self, address: str, who: str, text: str) -> None:
        """Post ``text`` said by ``who`` in ``address`` into every conversation bound to it:
        through the delivery router here, through the peer's ``/relay/v1/mirror`` there.
        Best effort: a failure is logged (and audited by the router or counted by the
        peer's breaker), never raised."""
        from hotplex.chat import DELIVERY

        for partner in self.bindings.partners(address):
            there = remote(partner)
            try:
                if there is None:
                    message = f"{who} in {address}:\n{text}"
                    await self._ctx.services.get(DELIVERY).send(partner, message)
                else:
                    message = f"{who} in {address} on {self.name}:\n{text}"
                    await self.client.mirror(there[0], there[1], message, address)
            except Exception as exc:
                log.warning("mirroring %s into %s failed: %s", address, partner, exc)

    async def drop_replayed(self, message: IncomingMessage) -> None:
        """A peer's message a crash left unfinished is not run again: its asker is gone
        (the stream it waited on broke, and it was told the answer is incomplete)."""
        from hotplex.services import STORAGE

        log.info("not replaying %s's relayed message for %s", message.user, message.address)
        storage = self._ctx.services.find(STORAGE)
        if storage is not None:
            await storage.finish_inbound(message)

    async def aclose(self) -> None:
        from hotplex.aio import cancel_and_wait

        await cancel_and_wait(*self._tasks)
        await self.client.aclose()


async def _prepend(first: AgentEvent, rest: AsyncIterator[AgentEvent]) -> AsyncIterator[AgentEvent]:
    yield first
    async for event in rest:
        yield event


RELAY: ServiceKey[RelayService] = ServiceKey("relay", RelayService)


@asynccontextmanager
async def relay_resource(ctx: PluginContext) -> AsyncIterator[RelayService]:
    """Start-up resource: the service, with the bindings loaded from storage."""
    from hotplex.runtime import RUNTIME
    from hotplex.services import STORAGE
    from hotplex.storage.sql import SqlStorage

    settings = ctx.plugin_config("relay")
    assert isinstance(settings, RelaySettings)
    storage = ctx.services.find(STORAGE)
    bindings = BindingStore(storage if isinstance(storage, SqlStorage) else None)
    await bindings.load()
    service = RelayService(ctx, settings, bindings)
    ctx.services.set(RELAY, service)
    runtime = ctx.services.find(RUNTIME)
    if runtime is not None:  # before the adapters start: the runtime keeps ours
        runtime.replayers.setdefault("relay", service.drop_replayed)
    try:
        yield service
    finally:
        ctx.services.remove(RELAY)
        await service.aclose()


def _service(services: Any) -> RelayService:
    service: RelayService | None = services.find(RELAY) if services is not None else None
    if service is None:
        raise UserFacingError("The relay is not running here.")
    return service


async def relay_command(args: str, ctx: ChatCommandContext) -> str:
    """``/relay <peer> <prompt>``: the answer follows in this conversation."""
    service = _service(ctx.services)
    if ctx.platform == "relay":  # its answer would have nowhere to go: the asker is a peer
        return "A relayed message cannot relay further with /relay; the agent's relay tool can."
    target, _, prompt = args.strip().partition(" ")
    if not target or not prompt.strip():
        peers = ", ".join(p.name for p in service.settings.peers) or "none configured"
        return f"Usage: `{ctx.prefix}relay <peer> <prompt>` (peers: {peers})"
    service.client.peer(target)  # an unknown peer is told now
    service.ask_into(ctx.address, target, prompt.strip(), ctx.user)
    return f"Asked {target}; its answer follows here."


async def relay_tool_call(args: dict[str, Any], ctx: ToolCallContext) -> str:
    service = _service(ctx.plugin_context.services)
    target, prompt = args.get("peer"), args.get("prompt")
    if not isinstance(target, str) or not isinstance(prompt, str) or not prompt.strip():
        raise UserFacingError("peer and prompt must be non-empty strings")
    label = ctx.address or f"session:{ctx.session_id}"
    chain = service.chain_from(ctx.address, label)
    answer = await service.ask(target, prompt, chain, f"session:{ctx.session_id}")
    return answer.summary()
