"""The delivery router: any address, through the adapter that owns its platform, escaped
and split within its limits, waiting (bounded) for an adapter not connected yet."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from chat_kit import balanced, joins_to

from hotplex import hookimpl
from hotplex.chat import DELIVERY, Endpoint, Renderer, Router
from hotplex.compose import compose
from hotplex.config import PluginSettings, load_settings
from hotplex.context import PluginContext
from hotplex.errors import DeliveryError
from hotplex.events import AuditEvent, agent_event
from hotplex.plugins import make_plugin_manager
from hotplex.records import ChatAdapterSpec, ConfigSection, ResourceSpec
from hotplex.testing.fakes import FakeChatAdapter, FakeMessageOperations
from hotplex.types import ApprovalRequest, ChatCapabilities

WAIT = 5.0


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


CAPS = ChatCapabilities(
    max_message_length=200, streaming="send", min_update_interval=0.0, escape=escape, files=True
)


class Switch:
    """An adapter's connection state, switched by the test."""

    def __init__(self, connected: bool = False) -> None:
        self.connected = connected

    def __call__(self) -> bool:
        return self.connected

    def state(self) -> str:
        return "connected" if self.connected else "connecting"


def router_for(ops: FakeMessageOperations, switch: Switch | None = None, **options: Any) -> Router:
    switch = switch or Switch(True)

    def lookup(platform: str) -> Endpoint | None:
        return Endpoint(ops, switch, switch.state) if platform == "chat" else None

    return Router(lookup, **options)


def approval(address: str | None) -> ApprovalRequest:
    return ApprovalRequest(
        permission_id="p1",
        kind="tool",
        session_id="s",
        address=address,
        tool="Bash",
        input={"command": "ls"},
        reason=None,
        scopes=("once",),
        approvers=(),
        created_at=0.0,
        expires_at=1e12,
    )


async def test_send_escapes_and_splits_within_the_limit() -> None:
    ops = FakeMessageOperations(CAPS)
    router = router_for(ops)
    code = "\n".join(f"print({i}) # <!channel>" for i in range(40))
    text = f"Report <!channel>:\n\n```python\n{code}\n```\n\ndone & dusted"
    ref = await router.send("chat:T1/C1", text)
    sent = [call[2] for call in ops.calls if call[0] == "send"]
    assert len(sent) > 2
    assert all(len(part) <= CAPS.max_message_length for part in sent)
    assert all(balanced(part) for part in sent)
    assert joins_to(sent, escape(text))
    assert not any("<!channel>" in part for part in sent)
    assert {call[1] for call in ops.calls} == {"chat:T1/C1"}
    assert ref.message_id == ops.calls[0][3] and ref.address == "chat:T1/C1"


async def test_send_waits_for_an_adapter_that_connects_later() -> None:
    ops = FakeMessageOperations(CAPS)
    switch = Switch(False)
    router = router_for(ops, switch, timeout=WAIT, poll=0.01)
    first = asyncio.create_task(router.send("chat:T1/C1", "one"))
    second = asyncio.create_task(router.send("chat:T1/C2", "two"))
    async with asyncio.timeout(WAIT):
        while router.waiting("chat") < 2:
            await asyncio.sleep(0)
    assert ops.calls == [] and not first.done()
    switch.connected = True
    async with asyncio.timeout(WAIT):
        await asyncio.gather(first, second)
    assert [(c[1], c[2]) for c in ops.calls] == [("chat:T1/C1", "one"), ("chat:T1/C2", "two")]
    assert router.waiting("chat") == 0


async def test_a_wait_that_is_too_long_or_too_full_says_so() -> None:
    ops = FakeMessageOperations(CAPS)
    router = router_for(ops, Switch(False), timeout=0.2, poll=0.01, queue_size=2)
    waiting = [asyncio.create_task(router.send("chat:T1/C1", f"m{i}")) for i in range(2)]
    async with asyncio.timeout(WAIT):
        while router.waiting("chat") < 2:
            await asyncio.sleep(0)
    with pytest.raises(DeliveryError, match=r"2 messages already wait .*at most 2.*connecting"):
        await router.send("chat:T1/C1", "one too many")
    for task in waiting:
        with pytest.raises(DeliveryError, match=r"still connecting after 0.2 s"):
            await task
    assert ops.calls == [] and router.waiting("chat") == 0


async def test_an_unknown_platform_fails_at_once_after_start_up_and_waits_before() -> None:
    sealed = False
    router = Router(sealed=lambda: sealed, timeout=WAIT, poll=0.01)
    ops = FakeMessageOperations(CAPS)
    early = asyncio.create_task(router.send("late:T1/C1", "early bird"))
    async with asyncio.timeout(WAIT):
        while router.waiting("late") < 1:
            await asyncio.sleep(0)
    router.attach("late", ops)
    async with asyncio.timeout(WAIT):
        await early
    assert ops.calls[0][1:3] == ("late:T1/C1", "early bird")
    sealed = True
    with pytest.raises(DeliveryError, match=r"no chat adapter owns the platform 'nowhere'"):
        await router.send("nowhere:T1/C1", "hi")


async def test_a_rate_limit_answer_is_waited_out() -> None:
    ops = FakeMessageOperations(CAPS)
    ops.rate_limit_next(2, retry_after=0.05)
    router = router_for(ops)
    await router.send("chat:T1/C1", "hello")
    sends = [c for c in ops.log if c.method == "send"]
    assert [c.error for c in sends] == ["RateLimitedError", "RateLimitedError", None]
    assert sends[2].at - sends[1].at >= 0.05
    assert ops.calls[0][2] == "hello"


async def test_send_file_and_ask_approval() -> None:
    ops = FakeMessageOperations(CAPS)
    router = router_for(ops)
    await router.send_file("chat:T1/C1", Path("/tmp/report.pdf"), title="<!here> report")
    assert ops.calls[-1] == ("upload_file", "chat:T1/C1", "/tmp/report.pdf", "&lt;!here&gt; report")
    assert await router.ask_approval(approval(None)) is None
    ref = await router.ask_approval(approval("chat:T1/C1/171"))
    assert ops.calls[-1] == ("ask_approval", "chat:T1/C1/171", "p1")
    assert ref is not None and ref.address == "chat:T1/C1/171"
    no_files = router_for(FakeMessageOperations(ChatCapabilities()))
    with pytest.raises(DeliveryError, match="takes no files"):
        await no_files.send_file("chat:T1/C1", Path("/tmp/x"))


async def test_operations_for_renders_a_turn_once_the_adapter_connects() -> None:
    ops = FakeMessageOperations(CAPS)
    switch = Switch(False)
    router = router_for(ops, switch, timeout=WAIT, poll=0.01)
    routed = router.operations_for("chat:T1/C1")
    assert routed.capabilities is CAPS
    with pytest.raises(DeliveryError, match="no chat adapter owns the platform 'none' yet"):
        _ = router.operations_for("none:T1/C1").capabilities
    events = [
        agent_event("text", text="answer <!channel>"),
        agent_event("done", status="ok", duration_ms=5),
    ]

    async def stream() -> AsyncIterator[Any]:
        for event in events:
            yield event

    rendering = asyncio.create_task(Renderer(routed, "chat:T1/C1").render(stream()))
    async with asyncio.timeout(WAIT):
        while router.waiting("chat") < 1:
            await asyncio.sleep(0)
    switch.connected = True
    async with asyncio.timeout(WAIT):
        result = await rendering
    assert ops.texts("chat:T1/C1") == ["answer &lt;!channel&gt;"]
    assert result.failures == 0


async def test_a_failed_delivery_is_audited() -> None:
    audited: list[AuditEvent] = []

    async def audit(event: AuditEvent) -> None:
        audited.append(event)

    router = Router(audit=audit)
    with pytest.raises(DeliveryError):
        await router.send("gone:T1/C1", "hi")
    assert [(a.type, a.data["address"], a.data["call"]) for a in audited] == [
        ("delivery.failed", "gone:T1/C1", "send")
    ]


# -- in a running HotPlex ----------------------------------------------------------------


class EnabledSettings(PluginSettings):
    enabled: bool = False


async def test_a_plugin_sends_at_start_up_before_the_adapter_runs(tmp_path: Path) -> None:
    """A plugin's start-up resource finds ``DELIVERY`` and posts at once; the message waits
    for the adapter the runtime starts after the resources, then goes out escaped."""
    adapter = FakeChatAdapter(CAPS)
    sent: list[asyncio.Task[Any]] = []
    waited: list[int] = []

    @asynccontextmanager
    async def cron(ctx: PluginContext) -> AsyncIterator[None]:
        router = ctx.services.get(DELIVERY)
        sent.append(asyncio.create_task(router.send("fake:W1/C1", "nightly <!channel>")))
        async with asyncio.timeout(WAIT):
            while router.waiting("fake") < 1:
                await asyncio.sleep(0)
        waited.append(router.waiting("fake"))
        yield

    class Plugin:
        @hookimpl
        def hotplex_add_config(self) -> ConfigSection:
            return ConfigSection(name="fakechat", model=EnabledSettings)

        @hookimpl
        def hotplex_register_chat_adapters(self) -> list[ChatAdapterSpec]:
            return [ChatAdapterSpec(name="fakechat", factory=lambda ctx, cfg: adapter)]

        @hookimpl
        def hotplex_startup(self) -> list[ResourceSpec]:
            return [ResourceSpec("cron", cron)]

    pm = make_plugin_manager(entry_points=False, environ={})
    pm.register(Plugin(), "test0")
    text = f"engine:\n  data_dir: {tmp_path}\nplugins:\n  fakechat: {{enabled: true}}\n"
    sections = pm.config_sections().values()
    settings = load_settings(None, text=text, sections=sections, environ={}).settings
    async with compose(settings, pm) as runtime:
        router = runtime.ctx.services.get(DELIVERY)
        async with asyncio.timeout(WAIT):
            ref = await sent[0]
        assert waited == [1]
        assert adapter.operations.calls[0][1:3] == ("fake:W1/C1", "nightly &lt;!channel&gt;")
        assert ref.address == "fake:W1/C1"
        with pytest.raises(DeliveryError, match="no chat adapter owns the platform 'slack'"):
            await router.send("slack:T1/C1", "hi")
    assert runtime.ctx.services.find(DELIVERY) is None


class Unnamed(FakeChatAdapter):
    """An adapter that declares no platform: it owns the name it was registered under."""

    platform = ""

    def __init__(self) -> None:
        super().__init__(CAPS)
        self.connected = asyncio.Event()

    def state(self) -> str:
        return "connected" if self.connected.is_set() else "connecting"


async def test_an_adapter_without_platform_owns_its_name_once_connected(tmp_path: Path) -> None:
    adapter = Unnamed()

    class Plugin:
        @hookimpl
        def hotplex_add_config(self) -> ConfigSection:
            return ConfigSection(name="legacy", model=EnabledSettings)

        @hookimpl
        def hotplex_register_chat_adapters(self) -> list[ChatAdapterSpec]:
            return [ChatAdapterSpec(name="legacy", factory=lambda ctx, cfg: adapter)]

    pm = make_plugin_manager(entry_points=False, environ={})
    pm.register(Plugin(), "test0")
    text = f"engine:\n  data_dir: {tmp_path}\nplugins:\n  legacy: {{enabled: true}}\n"
    sections = pm.config_sections().values()
    settings = load_settings(None, text=text, sections=sections, environ={}).settings
    async with compose(settings, pm) as runtime:
        router = runtime.ctx.services.get(DELIVERY)
        sending = asyncio.create_task(router.send("legacy:W1/C1", "hello"))
        async with asyncio.timeout(WAIT):
            while router.waiting("legacy") < 1:
                await asyncio.sleep(0)
        assert adapter.operations.calls == []
        adapter.connected.set()
        async with asyncio.timeout(WAIT):
            await sending
        assert adapter.operations.calls[0][1:3] == ("legacy:W1/C1", "hello")
