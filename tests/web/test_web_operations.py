"""``WebOperations``: a message for a web address becomes a ``message`` event on that
session's stream, stored and sent live to its subscribers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hotplex.chat import DELIVERY
from hotplex.compose import compose
from hotplex.config import load_settings
from hotplex.engine import ENGINE
from hotplex.errors import AddressError, DeliveryError
from hotplex.plugins import make_plugin_manager
from hotplex.storage.sink import STORAGE_SINK
from hotplex.types import ApprovalRequest
from hotplex.web.operations import WebOperations

WAIT = 5.0


async def test_a_message_reaches_subscribers_and_storage(tmp_path: Path) -> None:
    pm = make_plugin_manager(entry_points=False, environ={})
    text = (
        f"engine:\n  data_dir: {tmp_path}\nstorage:\n  url: sqlite+aiosqlite:///{tmp_path}/h.db\n"
    )
    settings = load_settings(None, text=text, sections=pm.config_sections().values(), environ={})
    async with compose(settings.settings, pm) as runtime:
        router = runtime.ctx.services.get(DELIVERY)
        engine = runtime.ctx.services.get(ENGINE)
        address = "web:alice/s1"
        first = await router.send(address, "first")  # creates the session
        session_id = engine.session_id(address)
        session = engine.get(session_id)
        assert session is not None and session.address == address
        subscription = engine.subscribe(session_id)
        assert subscription is not None
        await router.send(address, "second <!channel>")
        async with asyncio.timeout(WAIT):
            live = await anext(aiter(subscription))
        assert (live.type, live.turn_id, live.data) == (
            "message",
            "",
            {"text": "second <!channel>", "from": "hotplex"},
        )
        assert first.message_id == f"{session_id}:1"
        async with asyncio.timeout(WAIT):  # the storage sink writes in the background
            await runtime.ctx.services.get(STORAGE_SINK).committed(session_id, 2)
        stored = await engine.history(session_id)
        assert [(e.type, e.data["text"], e.seq) for e in stored] == [
            ("message", "first", 1),
            ("message", "second <!channel>", 2),
        ]
        with pytest.raises(DeliveryError, match="takes no files"):
            await router.send_file(address, tmp_path / "h.db")


async def test_addresses_and_approvals() -> None:
    ops = WebOperations(lambda: None)
    assert not ops.ready()
    with pytest.raises(AddressError, match="web:<key name>/<client session id>"):
        await ops.send("web:alice/s1/thread", "hi")
    with pytest.raises(AddressError):
        await ops.send("slack:T1/C1", "hi")
    with pytest.raises(DeliveryError, match="engine is not running"):
        await ops.send("web:alice/s1", "hi")
    request = ApprovalRequest(
        permission_id="p1",
        kind="tool",
        session_id="x",
        address="web:alice/s1",
        tool="Bash",
        input={},
        reason=None,
        scopes=("once",),
        approvers=(),
        created_at=0.0,
        expires_at=1e12,
    )
    ref = await ops.ask_approval(request)
    assert (ref.address, ref.message_id) == ("web:alice/s1", "p1")
