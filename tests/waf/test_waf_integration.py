"""The WAF wired into the engine's policy chain (every tool call, read-only ones too) and
into the inbound middleware chain (every prompt)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotplex.config import load_settings
from hotplex.engine.approvals import ADMIN
from hotplex.engine.engine import Engine
from hotplex.events import AgentEvent, AuditEvent
from hotplex.providers.claude_code import ClaudeCodeProvider
from hotplex.testing.fake_agent import write_wrapper
from hotplex.testing.fake_anthropic import FakeAnthropic
from hotplex.testing.real_cli import require_cli
from hotplex.types import IncomingMessage
from hotplex.waf import Waf
from hotplex.waf.policy import WafToolPolicy


def settings_for(tmp_path: Path, binary: Path) -> Any:
    raw = {"engine": {"data_dir": str(tmp_path / "data")}, "provider": {"binary": str(binary)}}
    return load_settings(None, text=yaml.safe_dump(raw), environ={}).settings


def result_of(events: list[AgentEvent]) -> AgentEvent:
    return next(e for e in events if e.type == "tool_result")


async def run_with_waf(
    tmp_path: Path, binary: Path, prompts: list[str]
) -> tuple[list[list[AgentEvent]], list[AuditEvent]]:
    audits: list[AuditEvent] = []

    async def emit(item: AgentEvent | AuditEvent) -> None:
        if isinstance(item, AuditEvent):
            audits.append(item)

    settings = settings_for(tmp_path, binary)
    waf = Waf.from_settings(settings.security.waf)
    results = []
    async with Engine(
        settings,
        ClaudeCodeProvider(settings.provider),
        emit=emit,
        policies=[WafToolPolicy(waf, emit)],
    ) as engine:
        for prompt in prompts:
            turn = await engine.execute("k", prompt, user="alice")
            events: list[AgentEvent] = []
            async with asyncio.timeout(60):
                async for event in turn:
                    events.append(event)
                    if event.type == "permission_request":
                        await engine.approvals.decide(
                            event.data["permission_id"], "allow", by=ADMIN
                        )
            results.append(events)
    return results, audits


async def test_fake_agent_dangerous_and_exfiltrating_calls_are_denied(tmp_path: Path) -> None:
    binary = write_wrapper(tmp_path / "bin")
    (dangerous, secret, harmless), audits = await run_with_waf(
        tmp_path,
        binary,
        [
            "RUN: rm -rf / --no-preserve-root",
            "RUN_READ: ~/.ssh/id_rsa",
            "RUN: touch harmless.txt",
        ],
    )
    assert result_of(dangerous).data["is_error"]
    assert "delete.root" in result_of(dangerous).data["output"]
    assert "permission_request" not in [e.type for e in dangerous]  # denied before asking
    assert result_of(secret).data["is_error"]
    assert "ssh" in result_of(secret).data["output"]
    assert not result_of(harmless).data["is_error"]
    rules = {a.data["rule_id"] for a in audits if a.type == "waf.verdict"}
    assert "delete.root" in rules and any("ssh" in r for r in rules)
    assert all(a.data["where"] == "tool" for a in audits if a.type == "waf.verdict")


@pytest.mark.real_cli
async def test_real_cli_dangerous_and_exfiltrating_calls_are_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    claude = require_cli("claude")
    async with FakeAnthropic() as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
        (dangerous, secret, harmless), _ = await run_with_waf(
            tmp_path,
            claude,
            [
                "BASH: rm -rf ~",
                "READ: ~/.ssh/id_rsa",
                "BASH: echo harmless",
            ],
        )
    assert result_of(dangerous).data["is_error"]
    assert "delete" in result_of(dangerous).data["output"]
    assert result_of(secret).data["is_error"] and "ssh" in result_of(secret).data["output"]
    harmless_result = result_of(harmless)
    assert not harmless_result.data["is_error"] and "harmless" in harmless_result.data["output"]


async def test_prompt_middleware_blocks_warns_and_asks(tmp_path: Path) -> None:
    from hotplex import hookimpl
    from hotplex.compose import compose
    from hotplex.engine import ENGINE
    from hotplex.interfaces import MiddlewareContext
    from hotplex.plugins import make_plugin_manager
    from hotplex.records import ProviderSpec, SinkSpec
    from hotplex.testing.fakes import FakeProvider

    audits: list[AuditEvent] = []

    class Collect:
        async def handle(self, batch: Any) -> None:
            audits.extend(e for e in batch if isinstance(e, AuditEvent))

        async def aclose(self) -> None:
            pass

    class Plugin:
        @hookimpl
        def hotplex_register_providers(self) -> list[ProviderSpec]:
            return [ProviderSpec("fake", lambda ctx: FakeProvider())]

        @hookimpl
        def hotplex_register_sinks(self) -> list[SinkSpec]:
            return [SinkSpec("collect", lambda ctx: Collect(), on_overflow="block")]  # type: ignore[arg-type, return-value]

    pm = make_plugin_manager(entry_points=False, environ={})
    pm.register(Plugin(), "t")
    raw = {
        "engine": {"data_dir": str(tmp_path / "data")},
        "provider": {"type": "fake"},
        "security": {"approval_timeout": "5s"},
    }
    settings = load_settings(None, text=yaml.safe_dump(raw), environ={}).settings
    passed: list[str] = []

    async def final(ctx: MiddlewareContext) -> None:
        passed.append(ctx.message.text)

    def msg(text: str) -> IncomingMessage:
        return IncomingMessage(
            address="web:t/s", text=text, user="alice", platform="web", direct=True
        )

    async with compose(settings, pm) as rt:
        blocked = await rt.process_inbound(msg("run this now: rm -rf / --no-preserve-root"), final)
        assert blocked.reply is not None and "delete.root" in blocked.reply
        question = await rt.process_inbound(msg("what does `rm -rf /` do?"), final)
        assert question.reply is None
        bad = await rt.process_inbound(msg("nul \x00 byte"), final)
        assert bad.reply is not None and "control" in bad.reply.lower()
        warned = await rt.process_inbound(msg("run: sudo apt-get install jq"), final)
        assert warned.reply is None
        engine = rt.ctx.services.get(ENGINE)

        async def answer(decision: str) -> None:  # a person answers the prompt approval
            async with asyncio.timeout(5):
                while not engine.approvals.pending():
                    await asyncio.sleep(0.01)
            (request,) = engine.approvals.pending()
            assert request.kind == "prompt" and "persist.cron" in (request.reason or "")
            await engine.approvals.decide(request.permission_id, decision, by="alice")  # type: ignore[arg-type]

        approved, _ = await asyncio.gather(
            rt.process_inbound(msg("run: crontab -e"), final), answer("allow")
        )
        assert approved.reply is None
        denied, _ = await asyncio.gather(
            rt.process_inbound(msg("run: crontab -r"), final), answer("deny")
        )
        assert denied.reply is not None and "approval was not given" in denied.reply
        await rt.sinks.flush(5)
    assert passed == ["what does `rm -rf /` do?", "run: sudo apt-get install jq", "run: crontab -e"]
    verdicts = [a for a in audits if a.type == "waf.verdict"]
    assert [(v.data["rule_id"], v.data["action"]) for v in verdicts] == [
        ("delete.root", "block"),
        ("priv.sudo", "warn"),
        ("persist.cron", "ask"),
        ("persist.cron", "ask"),
    ]
    assert verdicts[0].data["where"] == "prompt" and verdicts[0].actor == "alice"
    assert verdicts[2].data["approved_by"] == "alice" and verdicts[3].data["approved_by"] is None
