"""One ordered stream per turn: a tool's ``tool_use`` reaches every client before the
``permission_request`` that asks about it, under load (many sessions of the fake agent CLI
driven through the real Claude Code provider, events written through the daemon's storage
sink with a small queue, so publishing waits on storage as it does when storage lags), and
every client sees a session's events in ``seq`` order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from hotplex.config import Settings
from hotplex.engine import Engine
from hotplex.engine.approvals import ADMIN
from hotplex.engine.session import Subscription
from hotplex.events import AgentEvent, AuditEvent
from hotplex.providers.claude_code import ClaudeCodeProvider
from hotplex.sinks import SinkRunner
from hotplex.storage.plugin import storage_sink_spec
from hotplex.storage.sink import StorageSink
from hotplex.storage.sql import SqlStorage
from hotplex.testing.fake_agent import write_wrapper

SESSIONS = 20
TURNS = 4
CLIENTS = 2  # live subscribers per session, besides the turn's own iterator
SINK_QUEUE = 4  # the storage sink's queue: the engine waits for room in it


def order_faults(name: str, events: list[AgentEvent]) -> list[str]:
    """What is out of order in one client's view of a session."""
    faults = []
    seqs = [e.seq for e in events]
    if seqs != sorted(seqs):
        faults.append(f"{name}: seq out of order {seqs}")
    seen_tools: set[str] = set()
    for event in events:
        if event.type == "tool_use":
            seen_tools.add(str(event.data["input"].get("command")))
        elif event.type == "permission_request":
            command = str(event.data["input"].get("command"))
            if command not in seen_tools:
                faults.append(f"{name}: permission_request for {command!r} before its tool_use")
    return faults


async def test_tool_use_precedes_its_permission_request_for_every_client_under_load(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    binary = write_wrapper(tmp_path / "bin")
    settings = make_settings(max_sessions=SESSIONS + 2, extra={"provider": {"binary": str(binary)}})
    storage = SqlStorage(f"sqlite+aiosqlite:///{tmp_path / 'order.db'}")
    await storage.open()
    sink = StorageSink(storage)
    sinks = SinkRunner({"storage": (storage_sink_spec(SINK_QUEUE), sink)})
    sinks.start()
    emitted: list[AgentEvent | AuditEvent] = []

    async def emit(item: AgentEvent | AuditEvent) -> None:
        emitted.append(item)
        await sinks.emit(item)

    async def durable(event: AgentEvent) -> None:
        await sink.committed(event.session_id, event.seq)

    faults: list[str] = []
    try:
        async with Engine(
            settings,
            ClaudeCodeProvider(settings.provider),
            emit=emit,
            store=storage,
            durable=durable,
        ) as engine:

            async def client(name: str, subscription: Subscription, turns: int) -> None:
                """Render a session's live events; answer every approval it is asked."""
                seen: list[AgentEvent] = []
                done = 0
                async with asyncio.timeout(120):
                    async for event in subscription:
                        seen.append(event)
                        if event.type == "permission_request" and name.endswith("/0"):
                            await engine.approvals.decide(
                                str(event.data["permission_id"]), "allow", by=ADMIN
                            )
                        if event.type == "done":
                            done += 1
                            if done == turns:
                                break
                faults.extend(order_faults(name, seen))

            async def conversation(i: int) -> None:
                key = f"k{i}"
                await (await engine.execute(key, "hello")).collect(60)  # the agent is up
                session = engine.get(engine.session_id(key))
                assert session is not None
                clients = [
                    asyncio.create_task(client(f"{key}/{c}", session.subscribe(), TURNS))
                    for c in range(CLIENTS)
                ]
                for t in range(TURNS):
                    turn = await engine.execute(key, f"RUN: echo {i}-{t}")
                    events = await turn.collect(120)
                    assert events[-1].type == "done", events[-1]
                    faults.extend(order_faults(f"{key}/turn{t}", events))
                    assert any(e.type == "permission_request" for e in events)
                await asyncio.gather(*clients)

            await asyncio.gather(*(conversation(i) for i in range(SESSIONS)))
    finally:
        await sinks.aclose()
        await storage.close()
    assert not faults, "\n".join(faults[:20]) + f"\n({len(faults)} faults)"
    stored = [e for e in emitted if isinstance(e, AgentEvent)]
    by_session: dict[str, list[AgentEvent]] = {}
    for event in stored:
        by_session.setdefault(event.session_id, []).append(event)
    assert len(by_session) == SESSIONS
    for session_id, events in by_session.items():
        assert not order_faults(f"sink:{session_id}", events)
