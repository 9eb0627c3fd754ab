"""Every hookspec: documented in docs/hooks.md with its exact arguments, and a plugin
implementing it changes what core does."""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import click
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner
from pydantic import Field

from hotplex import hookimpl, hookspecs
from hotplex.cli import build_cli
from hotplex.compose import compose, load_composition
from hotplex.config import PluginSettings, load_settings
from hotplex.context import PluginContext
from hotplex.events import AgentEvent, AuditEvent, agent_event
from hotplex.gateway import build_app
from hotplex.gateway.auth import API_KEY_NAME
from hotplex.interfaces import (
    ChatAdapter,
    HookSink,
    Middleware,
    MiddlewareContext,
    Next,
    Storage,
)
from hotplex.outbox import OUTBOX
from hotplex.plugins import HotplexPluginManager, make_plugin_manager
from hotplex.records import (
    AgentToolSpec,
    ChatAdapterSpec,
    ChatCommandSpec,
    CheckResult,
    CommandSpec,
    ConfigSection,
    DoctorCheck,
    MiddlewareSpec,
    Migration,
    OutboxSpec,
    ProviderSpec,
    ResourceSpec,
    RouteSpec,
    ShutdownSpec,
    SinkSpec,
    StorageSpec,
    TemplateSpec,
)
from hotplex.runtime import make_storage
from hotplex.storage import ApprovalRecord, AuditRecord, QueuedTurn, SessionRecord
from hotplex.templating import make_environment
from hotplex.testing.fakes import FakeChatAdapter, FakeProvider
from hotplex.types import ApprovalRequest, IncomingMessage

DOCS = Path(__file__).parents[1] / "docs" / "hooks.md"
HOOKS = sorted(n for n in dir(hookspecs) if n.startswith("hotplex_"))


def core_pm(*plugins: object) -> HotplexPluginManager:
    pm = make_plugin_manager(entry_points=False, environ={})
    for i, plugin in enumerate(plugins):
        pm.register(plugin, f"test{i}")
    return pm


def settings_for(pm: HotplexPluginManager, text: str = "", tmp: Path | None = None) -> Any:
    if tmp is not None:
        text = f"engine:\n  data_dir: {tmp}\n" + text
    sections = pm.config_sections().values()
    return load_settings(None, text=text, sections=sections, environ={}).settings


def message(text: str = "hi") -> IncomingMessage:
    return IncomingMessage(
        address="web:default/s1", text=text, user="u", platform="web", direct=True
    )


# -- documentation ---------------------------------------------------------------------


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented_with_exact_signature(name: str) -> None:
    spec = getattr(hookspecs, name)
    params = ", ".join(inspect.signature(spec).parameters)
    heading = f"### `{name}({params})`"
    text = DOCS.read_text()
    assert heading in text, f"docs/hooks.md lacks the heading {heading}"
    section = text.split(heading, 1)[1].split("\n### ", 1)[0]
    assert "Returns" in section and "Called" in section


def test_every_hook_has_a_test_here() -> None:
    source = Path(__file__).read_text()
    for name in HOOKS:
        assert re.search(rf"def test_{name}\b", source), f"no test for {name}"


# -- one test per hook -----------------------------------------------------------------


class GreeterSettings(PluginSettings):
    greeting: str = Field("hello", description="What to say.")


def test_hotplex_add_config(tmp_path: Path) -> None:
    class Plugin:
        @hookimpl
        def hotplex_add_config(self) -> ConfigSection:
            return ConfigSection(name="greeter", model=GreeterSettings)

    pm = core_pm(Plugin())
    settings = settings_for(pm, "plugins:\n  greeter: {greeting: hoi}\n")
    assert settings.plugins["greeter"].greeting == "hoi"
    assert settings_for(pm).plugins["greeter"].greeting == "hello"


def test_hotplex_register_providers(tmp_path: Path) -> None:
    from hotplex.core.doctor import check_provider

    class Plugin:
        @hookimpl
        def hotplex_register_providers(self) -> list[ProviderSpec]:
            return [ProviderSpec(name="mine", factory=lambda ctx: FakeProvider())]

    pm = core_pm(Plugin())
    settings = settings_for(pm, "provider: {type: mine}\n")
    result = check_provider(PluginContext(settings=settings, plugins=pm))
    assert result.ok and "mine: no executable needed" in result.detail


async def test_hotplex_register_chat_adapters(tmp_path: Path) -> None:
    adapter = FakeChatAdapter()
    received: list[tuple[str, str]] = []

    class Plugin:
        @hookimpl
        def hotplex_add_config(self) -> ConfigSection:
            return ConfigSection(name="fakechat", model=EnabledSettings)

        @hookimpl
        def hotplex_register_chat_adapters(self) -> list[ChatAdapterSpec]:
            return [ChatAdapterSpec(name="fakechat", factory=lambda ctx, cfg: adapter)]

    async def on_message(source: ChatAdapter, msg: IncomingMessage) -> None:
        received.append((source.name, msg.text))

    pm = core_pm(Plugin())
    settings = settings_for(pm, "plugins:\n  fakechat: {enabled: true}\n", tmp_path)
    async with compose(settings, pm, on_message=on_message) as rt:
        assert rt.adapters == {"fakechat": adapter}
        await adapter.receive(message("ping"))
    assert received == [("fake", "ping")]


class EnabledSettings(PluginSettings):
    enabled: bool = False


class MemoryStorage(Storage):
    """A do-nothing Storage: only checks that a plugin can replace the backend."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
    async def integrity_check(self) -> list[str]:
        return []

    async def append_batch(
        self, events: Sequence[AgentEvent], audit: Sequence[AuditEvent]
    ) -> None: ...
    async def read_events(
        self, session_id: str, *, since_seq: int = 0, limit: int = 1000
    ) -> list[AgentEvent]:
        return []

    async def read_audit(
        self,
        *,
        types: Collection[str] | None = None,
        session_id: str | None = None,
        since: float | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditRecord]:
        return []

    async def prune(self, older_than: float) -> int:
        return 0

    async def save_session(self, record: SessionRecord) -> None: ...
    async def get_session(self, session_id: str) -> SessionRecord | None:
        return None

    async def load_sessions(self) -> list[SessionRecord]:
        return []

    async def accept_turn(
        self,
        session_id: str,
        turn_id: str,
        prompt: str,
        *,
        request_id: str | None = None,
        user: str | None = None,
        inbound: IncomingMessage | None = None,
        started: bool = False,
    ) -> None: ...
    async def start_turn(self, turn_id: str) -> None: ...
    async def end_turn(
        self, turn_id: str, status: str, session: SessionRecord | None = None
    ) -> None: ...
    async def pending_turns(self, session_id: str | None = None) -> list[QueuedTurn]:
        return []

    async def save_approval(
        self,
        request: ApprovalRequest,
        decision: str | None = None,
        by: str | None = None,
        scope: str | None = None,
    ) -> None: ...
    async def get_approval(self, permission_id: str) -> ApprovalRecord | None:
        return None

    async def record_inbound(self, message: IncomingMessage) -> bool:
        return True

    async def finish_inbound(self, message: IncomingMessage) -> None: ...
    async def pending_inbound(self) -> list[IncomingMessage]:
        return []

    async def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        return True

    async def renew_lease(self, name: str, holder: str, ttl: float) -> bool:
        return True

    async def release_lease(self, name: str, holder: str) -> bool:
        return True


def test_hotplex_register_storage(tmp_path: Path) -> None:
    class Default:
        @hookimpl(trylast=True)
        def hotplex_register_storage(self) -> list[StorageSpec]:
            return [StorageSpec("default", ("memory",), lambda ctx, url: MemoryStorage("d"))]

    class Override:
        @hookimpl
        def hotplex_register_storage(self) -> list[StorageSpec]:
            return [StorageSpec("override", ("memory",), lambda ctx, url: MemoryStorage(url))]

    pm = core_pm(Default(), Override())
    settings = settings_for(pm, "storage: {url: 'memory://x'}\n")
    storage = make_storage(PluginContext(settings=settings, plugins=pm))
    assert isinstance(storage, MemoryStorage) and storage.url == "memory://x"


async def test_hotplex_register_migrations(tmp_path: Path) -> None:
    from sqlalchemy import Column, Connection, MetaData, String, Table, text

    from hotplex.runtime import Runtime
    from hotplex.storage.sql import SqlStorage

    def v1(conn: Connection) -> None:
        Table("notes", MetaData(), Column("id", String, primary_key=True)).create(conn)

    class Plugin:
        @hookimpl
        def hotplex_register_migrations(self) -> list[Migration]:
            return [Migration("test0", 1, "notes", v1)]

    pm = core_pm(Plugin())
    runtime = Runtime(settings_for(pm, tmp=tmp_path), pm)
    storage = make_storage(runtime.ctx)
    assert isinstance(storage, SqlStorage)
    await storage.open()
    try:
        async with storage.write() as conn:  # the plugin's table exists: storage made it
            await conn.execute(text("INSERT INTO notes (id) VALUES ('n1')"))
    finally:
        await storage.close()


async def test_hotplex_register_sinks(tmp_path: Path) -> None:
    got: list[Any] = []

    class Sink(HookSink):
        async def handle(self, batch: Sequence[AgentEvent | AuditEvent]) -> None:
            got.extend(batch)

    class Plugin:
        @hookimpl
        def hotplex_register_sinks(self) -> list[SinkSpec]:
            return [SinkSpec("collect", lambda ctx: Sink(), on_overflow="block")]

    pm = core_pm(Plugin())
    async with compose(settings_for(pm, tmp=tmp_path), pm) as rt:
        for i in range(300):
            await rt.emit(agent_event("text", text=str(i)))
        assert await rt.sinks.flush(5)
    assert [e.data["text"] for e in got] == [str(i) for i in range(300)]


async def test_hotplex_register_outbox(tmp_path: Path) -> None:
    class Plugin:
        @hookimpl
        def hotplex_register_outbox(self) -> list[OutboxSpec]:
            return [OutboxSpec("relay", lambda ctx: {"relay:a": ["done", "cron.*"]})]

    pm = core_pm(Plugin())
    async with compose(settings_for(pm, tmp=tmp_path), pm) as rt:
        outbox = rt.ctx.services.get(OUTBOX)
        await rt.emit(AuditEvent("cron.run", {"job": "j"}))
        await rt.emit(AuditEvent("waf.verdict", {}))
        assert await rt.sinks.flush(5)
        rows = await outbox.claim("relay:a", limit=10)
    assert [(r.type, r.payload["data"]) for r in rows] == [("cron.run", {"job": "j"})]


async def test_hotplex_register_middleware(tmp_path: Path) -> None:
    order: list[str] = []

    def make(name: str, stop: bool = False) -> Middleware:
        class M(Middleware):
            async def process(self, ctx: MiddlewareContext, call_next: Next) -> None:
                order.append(name)
                if stop:
                    ctx.reply = f"stopped by {name}"
                    return
                await call_next(ctx)

        return M()

    class Plugin:
        @hookimpl
        def hotplex_register_middleware(self) -> list[MiddlewareSpec]:
            return [
                MiddlewareSpec("late", lambda ctx: make("late"), order=900),
                MiddlewareSpec("early", lambda ctx: make("early"), order=10),
            ]

    class Blocker:
        @hookimpl
        def hotplex_register_middleware(self) -> list[MiddlewareSpec]:
            return [MiddlewareSpec("block", lambda ctx: make("block", stop=True), order=950)]

    async def final(ctx: MiddlewareContext) -> None:
        order.append("final")

    pm = core_pm(Plugin())
    async with compose(settings_for(pm, tmp=tmp_path), pm) as rt:
        await rt.process_inbound(message(), final)
    assert order == ["early", "late", "final"]
    order.clear()
    pm = core_pm(Plugin(), Blocker())
    async with compose(settings_for(pm, tmp=tmp_path), pm) as rt:
        ctx = await rt.process_inbound(message(), final)
    assert order == ["early", "late", "block"] and ctx.reply == "stopped by block"


async def test_hotplex_register_routes(tmp_path: Path) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"key": request[API_KEY_NAME]})

    class Plugin:
        @hookimpl
        def hotplex_register_routes(self) -> list[RouteSpec]:
            return [RouteSpec("GET", "/hello", hello)]

    pm = core_pm(Plugin())
    text = "server:\n  api_keys: [{name: alice, key: k-alice-0123456789}]\n"
    app = build_app(compose(settings_for(pm, text, tmp_path), pm))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        denied = await client.get("/hello")
        assert denied.status == 401
        ok = await client.get("/hello", headers={"Authorization": "Bearer k-alice-0123456789"})
        assert ok.status == 200 and await ok.json() == {"key": "alice"}


async def test_hotplex_register_commands(tmp_path: Path) -> None:
    @click.command("hello")
    def hello() -> None:
        click.echo("hello from plugin")

    async def shout(args: str, ctx: Any) -> str:
        return args.upper()

    class Plugin:
        @hookimpl
        def hotplex_register_commands(self) -> list[Any]:
            return [CommandSpec(hello), ChatCommandSpec("shout", "Shout it", shout)]

    pm = core_pm(Plugin())
    result = CliRunner().invoke(build_cli(pm), ["hello"], obj={"plugins": pm})
    assert result.exit_code == 0 and result.output == "hello from plugin\n"
    async with compose(settings_for(pm, tmp=tmp_path), pm) as rt:
        reply = await rt.chat_commands.handle(
            "/shout hi there", address="web:a/b", user="u", platform="web"
        )
        assert reply == "HI THERE"
        slack = await rt.chat_commands.handle(
            "/hotplex shout x", address="slack:T/C", user="u", platform="slack"
        )
        assert slack == "X"


def test_hotplex_register_agent_tools(tmp_path: Path) -> None:
    async def echo(args: dict[str, Any], ctx: Any) -> str:
        return str(args)

    schema = {"type": "object", "properties": {"text": {"type": "string"}}}

    class Plugin:
        @hookimpl
        def hotplex_register_agent_tools(self) -> list[AgentToolSpec]:
            return [AgentToolSpec("echo", "Echo text", schema, echo)]

    pm = core_pm(Plugin())
    rt = compose(settings_for(pm, tmp=tmp_path), pm)
    catalog = rt.tool_catalog()
    assert catalog[0] == {"name": "echo", "description": "Echo text", "inputSchema": schema}
    assert [tool["name"] for tool in catalog] == ["echo", "send_file"]  # core's own tool


def test_hotplex_register_templates() -> None:
    class Plugin:
        @hookimpl
        def hotplex_register_templates(self) -> list[TemplateSpec]:
            return [TemplateSpec("tests", "hotplex.templates", "text")]

    env = make_environment(core_pm(Plugin()).templates())
    assert "core/text/help.md.j2" in env.list_templates()
    assert "tests/help.md.j2" in env.list_templates()
    rendered = env.get_template("tests/help.md.j2").render(
        prefix="/", commands=[{"name": "reset", "help": "start over"}]
    )
    assert "`/reset` — start over" in rendered


def test_hotplex_doctor_checks(tmp_path: Path) -> None:
    class Plugin:
        @hookimpl
        def hotplex_doctor_checks(self) -> list[DoctorCheck]:
            return [
                DoctorCheck(
                    "widget", lambda ctx: CheckResult(False, "widget broken", hint="fix the widget")
                )
            ]

    pm = core_pm(Plugin())
    (tmp_path / "hotplex.yaml").write_text(f"engine: {{data_dir: {tmp_path}}}\n")
    result = CliRunner().invoke(
        build_cli(pm),
        ["--config", str(tmp_path / "hotplex.yaml"), "doctor"],
        obj={"plugins": pm},
    )
    assert result.exit_code == 1
    assert "test0: widget" in result.output and "fix: fix the widget" in result.output


async def test_hotplex_startup(tmp_path: Path) -> None:
    log: list[str] = []

    def resource(name: str) -> Any:
        @asynccontextmanager
        async def cm(ctx: PluginContext) -> AsyncIterator[None]:
            log.append(f"enter {name}")
            yield
            log.append(f"exit {name}")

        return cm

    class Plugin:
        @hookimpl
        def hotplex_startup(self) -> list[ResourceSpec]:
            return [ResourceSpec("a", resource("a")), ResourceSpec("b", resource("b"))]

    pm = core_pm(Plugin())
    async with compose(settings_for(pm, tmp=tmp_path), pm):
        assert log == ["enter a", "enter b"]
    assert log == ["enter a", "enter b", "exit b", "exit a"]


async def test_hotplex_startup_failure_tears_down_only_what_started(tmp_path: Path) -> None:
    log: list[str] = []

    @asynccontextmanager
    async def good(ctx: PluginContext) -> AsyncIterator[None]:
        log.append("enter good")
        yield
        log.append("exit good")

    @asynccontextmanager
    async def bad(ctx: PluginContext) -> AsyncIterator[None]:
        raise RuntimeError("cannot start")
        yield

    class Plugin:
        @hookimpl
        def hotplex_startup(self) -> list[ResourceSpec]:
            return [ResourceSpec("good", good), ResourceSpec("bad", bad)]

    pm = core_pm(Plugin())
    with pytest.raises(RuntimeError, match="cannot start"):
        async with compose(settings_for(pm, tmp=tmp_path), pm):
            pass
    assert log == ["enter good", "exit good"]


async def test_hotplex_shutdown(tmp_path: Path) -> None:
    log: list[str] = []

    @asynccontextmanager
    async def res(ctx: PluginContext) -> AsyncIterator[None]:
        yield
        log.append("resource closed")

    async def goodbye(ctx: PluginContext) -> None:
        log.append("goodbye")

    async def hang(ctx: PluginContext) -> None:
        await asyncio.Event().wait()

    class Plugin:
        @hookimpl
        def hotplex_startup(self) -> list[ResourceSpec]:
            return [ResourceSpec("res", res)]

        @hookimpl
        def hotplex_shutdown(self) -> list[ShutdownSpec]:
            return [ShutdownSpec("hang", hang, timeout=0.1), ShutdownSpec("bye", goodbye)]

    pm = core_pm(Plugin())
    async with compose(settings_for(pm, tmp=tmp_path), pm):
        assert log == []
    assert log == ["goodbye", "resource closed"]


def test_compose_uses_entry_point_sections(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("plugins:\n  slack: {enabled: false}\n")
    composition = load_composition(str(tmp_path / "c.yaml"), environ={})
    assert "slack" in composition.config.settings.plugins
