"""Approvals in chat over the running-HotPlex test kit: the fake provider, the fake chat
platform ``fake`` (its section with the access keys), and helpers to read its cards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from hotplex.chat import CHAT_BRIDGE, ChatBridge
from hotplex.chat.approvals import CHAT_APPROVALS, ChatApprovals
from hotplex.config import Settings, load_settings
from hotplex.engine import Engine
from hotplex.events import AgentEvent
from hotplex.records import ConfigSection
from hotplex.runtime import Runtime
from hotplex.testing.fakes import FakeChatAdapter, FakeMessageOperations, FakeProvider
from hotplex.testing.running import FakeChatSettings, RunningHotPlex, running_hotplex
from hotplex.types import ApprovalOutcome


@dataclass
class Running:
    hp: RunningHotPlex

    @property
    def runtime(self) -> Runtime:
        return self.hp.runtime

    @property
    def provider(self) -> FakeProvider:
        return self.hp.provider

    @property
    def adapter(self) -> FakeChatAdapter:
        return self.hp.adapter

    @property
    def engine(self) -> Engine:
        return self.hp.engine

    @property
    def bridge(self) -> ChatBridge:
        return self.runtime.ctx.services.get(CHAT_BRIDGE)

    @property
    def cards(self) -> ChatApprovals:
        return self.runtime.ctx.services.get(CHAT_APPROVALS)

    @property
    def ops(self) -> FakeMessageOperations:
        return self.hp.ops


@asynccontextmanager
async def running(
    tmp_path: Path, provider: FakeProvider, extra: dict[str, Any] | None = None
) -> AsyncIterator[Running]:
    """HotPlex built like the daemon, with ``provider`` and a new fake chat platform."""
    async with running_hotplex(tmp_path, config=extra, provider=provider) as hp:
        yield Running(hp)


class _Enabled(FakeChatSettings):
    enabled: bool = Field(True)


def settings_for(tmp_path: Path, extra: dict[str, Any]) -> Settings:
    """Load the config ``extra`` (with the fake platform's section); raises ConfigError."""
    raw = {"engine": {"data_dir": str(tmp_path / "data")}, **extra}
    return load_settings(
        None, text=yaml.safe_dump(raw), sections=[ConfigSection("fake", _Enabled)], environ={}
    ).settings


async def next_of(turn: Any, kind: str, timeout: float = 5.0) -> AgentEvent:
    from hotplex.testing.turns import next_event

    event: AgentEvent = await next_event(turn, kind, timeout)
    return event


def calls(ops: FakeMessageOperations, method: str) -> list[tuple[Any, ...]]:
    return [c for c in ops.calls if c[0] == method]


def card_ids(ops: FakeMessageOperations) -> dict[str, str]:
    """permission id -> the message id of its card (the fake numbers the messages it
    creates in call order)."""
    ids: dict[str, str] = {}
    count = 0
    for call in ops.calls:
        if call[0] in ("send", "start_stream", "ask_approval", "upload_file"):
            count += 1
            if call[0] == "ask_approval":
                ids[str(call[2])] = f"m{count}"
    return ids


async def card_of(ops: FakeMessageOperations, permission_id: str) -> str:
    """Wait for the card of ``permission_id``; its message id."""
    await ops.wait_for(lambda: any(c[2] == permission_id for c in calls(ops, "ask_approval")))
    return card_ids(ops)[permission_id]


async def closed_with(
    ops: FakeMessageOperations, permission_id: str
) -> tuple[str, ApprovalOutcome]:
    """Wait for the card of ``permission_id`` to be updated; its message id and outcome."""
    await ops.wait_for(lambda: any(c[2] == permission_id for c in calls(ops, "update_approval")))
    updates = [c for c in calls(ops, "update_approval") if c[2] == permission_id]
    assert len(updates) == 1, updates
    _, _, _, outcome, message_id = updates[0]
    assert isinstance(outcome, ApprovalOutcome)
    return str(message_id), outcome
