"""Inbound triggers: ``POST /hooks/v1/{name}`` verified by GitHub's or the Standard Webhooks
scheme, with a body limit and a replay window, runs its sandboxed prompt through the chat
bridge once per delivery id and delivers the answer to a fake-chat conversation."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from standardwebhooks.webhooks import Webhook
from webhook_kit import GITHUB_SECRET, SECRET, routes_client, webhook_hotplex

from hotplex.services import STORAGE
from hotplex.testing.fakes import FakeProvider, ToolCall
from hotplex.testing.running import RunningHotPlex
from hotplex.types import IncomingMessage

TARGET = "fake:w/C-builds"
GITHUB = {
    "name": "gh",
    "scheme": "github",
    "secret": GITHUB_SECRET,
    "prompt": "Review {{ payload.pull_request.title }} by {{ payload.sender.login }}",
    "deliver_to": TARGET,
}
STANDARD = {
    "name": "std",
    "secret": SECRET,
    "prompt": "Alert {{ payload.alert }}",
    "deliver_to": TARGET,
    "max_body_bytes": 2048,
}
PR = {"pull_request": {"title": "Fix the flaky test"}, "sender": {"login": "octocat"}}

Client = TestClient[web.Request, web.Application]


def github_headers(
    body: bytes, delivery: str | None = None, secret: str = GITHUB_SECRET
) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Event": "pull_request",
        "Content-Type": "application/json",
    }


def standard_headers(body: bytes, msg_id: str, at: float | None = None) -> dict[str, str]:
    """Signed by the reference library, as a Standard Webhooks sender would."""
    stamp = datetime.fromtimestamp(at if at is not None else time.time(), tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": Webhook(SECRET).sign(msg_id, stamp, body),
        "Content-Type": "application/json",
    }


@asynccontextmanager
async def triggers(
    tmp_path: Path, provider: FakeProvider | None = None, **extra: Any
) -> AsyncIterator[tuple[RunningHotPlex, Client]]:
    config = {"inbound": [GITHUB, STANDARD], **extra}
    kwargs: dict[str, Any] = {} if provider is None else {"provider": provider}
    async with webhook_hotplex(tmp_path, config, **kwargs) as hp, routes_client(hp) as client:
        yield hp, client


async def test_a_github_trigger_runs_its_prompt_and_delivers_the_answer(tmp_path: Path) -> None:
    async with triggers(tmp_path) as (hp, client):
        body = json.dumps(PR).encode()
        response = await client.post("/hooks/v1/gh", data=body, headers=github_headers(body))
        assert response.status == 200, await response.text()
        answer = await response.json()
        assert answer["status"] == "ok"
        assert answer["answer"] == "echo: Review Fix the flaky test by octocat"
        assert answer["run_id"].startswith("turn_")
        await hp.ops.wait_for(lambda: bool(hp.ops.texts(TARGET)))
        assert hp.ops.texts(TARGET) == ["echo: Review Fix the flaky test by octocat"]


async def test_a_standard_trigger_verifies_with_the_reference_signature(tmp_path: Path) -> None:
    async with triggers(tmp_path) as (hp, client):
        body = json.dumps({"alert": "disk full"}).encode()
        response = await client.post(
            "/hooks/v1/std", data=body, headers=standard_headers(body, "msg_1")
        )
        assert response.status == 200, await response.text()
        assert (await response.json())["answer"] == "echo: Alert disk full"
        await hp.ops.wait_for(lambda: hp.ops.texts(TARGET) == ["echo: Alert disk full"])


async def test_a_bad_signature_gets_401_and_nothing_runs(tmp_path: Path) -> None:
    async with triggers(tmp_path) as (hp, client):
        body = json.dumps(PR).encode()
        forged = github_headers(body, secret="not-the-secret")
        assert (await client.post("/hooks/v1/gh", data=body, headers=forged)).status == 401
        tampered = github_headers(body)
        assert (await client.post("/hooks/v1/gh", data=body + b" ", headers=tampered)).status == 401
        unsigned = {"Content-Type": "application/json"}
        assert (await client.post("/hooks/v1/std", data=body, headers=unsigned)).status == 401
        wrong = standard_headers(body, "msg_2")
        wrong["webhook-signature"] = "v1," + "A" * 44
        assert (await client.post("/hooks/v1/std", data=body, headers=wrong)).status == 401
        assert (await client.post("/hooks/v1/nope", data=body, headers=unsigned)).status == 404
        assert hp.engine.sessions() == []  # no session was ever started
        assert hp.ops.texts(TARGET) == []


async def test_a_redelivered_request_runs_once(tmp_path: Path) -> None:
    async with triggers(tmp_path) as (hp, client):
        body = json.dumps(PR).encode()
        headers = github_headers(body, delivery="d-1")
        first = await client.post("/hooks/v1/gh", data=body, headers=headers)
        again = await client.post("/hooks/v1/gh", data=body, headers=headers)
        assert first.status == 200 and (await first.json())["status"] == "ok"
        assert again.status == 200 and (await again.json())["duplicate"] is True
        std_body = json.dumps({"alert": "x"}).encode()
        std = standard_headers(std_body, "msg_same")
        assert (await client.post("/hooks/v1/std", data=std_body, headers=std)).status == 200
        dup = await client.post("/hooks/v1/std", data=std_body, headers=std)
        assert (await dup.json())["duplicate"] is True
        await hp.ops.wait_for(lambda: len(hp.ops.texts(TARGET)) == 2)
        [session] = [s for s in hp.engine.sessions() if s.address == "webhook:hooks/gh"]
        assert session.turns == 1


async def test_a_stale_timestamp_is_a_replay_and_refused(tmp_path: Path) -> None:
    async with triggers(tmp_path) as (hp, client):
        body = json.dumps({"alert": "old"}).encode()
        old = standard_headers(body, "msg_old", at=time.time() - 600)
        assert (await client.post("/hooks/v1/std", data=body, headers=old)).status == 401
        future = standard_headers(body, "msg_future", at=time.time() + 600)
        assert (await client.post("/hooks/v1/std", data=body, headers=future)).status == 401
        assert hp.engine.sessions() == []


async def test_an_oversize_body_gets_413(tmp_path: Path) -> None:
    async with triggers(tmp_path) as (hp, client):
        body = json.dumps({"alert": "x" * 4096}).encode()
        response = await client.post(
            "/hooks/v1/std", data=body, headers=standard_headers(body, "msg_big")
        )
        assert response.status == 413
        assert hp.engine.sessions() == []


async def test_the_template_is_sandboxed(tmp_path: Path) -> None:
    sneaky = {**GITHUB, "prompt": "{{ payload.__class__.__mro__[1].__subclasses__() }}"}
    async with webhook_hotplex(tmp_path, {"inbound": [sneaky]}) as hp, routes_client(hp) as client:
        body = json.dumps(PR).encode()
        response = await client.post("/hooks/v1/gh", data=body, headers=github_headers(body))
        assert response.status == 422
        assert hp.engine.sessions() == []


async def test_a_slow_run_answers_202_and_delivers_later(tmp_path: Path) -> None:
    async with triggers(tmp_path, FakeProvider(delay=0.4), answer_within="0.2s") as (hp, client):
        body = json.dumps(PR).encode()
        response = await client.post("/hooks/v1/gh", data=body, headers=github_headers(body))
        assert response.status == 202
        assert (await response.json())["run_id"].startswith("turn_")
        await hp.ops.wait_for(lambda: bool(hp.ops.texts(TARGET)), timeout=10)
        assert hp.ops.texts(TARGET) == ["echo: Review Fix the flaky test by octocat"]


async def test_a_message_a_crash_left_unfinished_runs_at_start_up(tmp_path: Path) -> None:
    """Recorded (a 2xx never went out) but its turn never accepted: the runtime's replay runs
    it once, the answer goes to deliver_to, and a redelivery is a duplicate."""
    async with triggers(tmp_path) as (hp, client):
        storage = hp.runtime.ctx.services.get(STORAGE)
        stored = IncomingMessage(
            address="webhook:hooks/gh",
            text="Review the stored one",
            user="webhook:gh",
            platform="webhook",
            event_id="gh:d-crash",
            direct=True,
        )
        assert await storage.record_inbound(stored)
        assert await hp.runtime.replay_inbound() == 1
        await hp.ops.wait_for(lambda: hp.ops.texts(TARGET) == ["echo: Review the stored one"])
        body = json.dumps(PR).encode()
        again = await client.post(
            "/hooks/v1/gh", data=body, headers=github_headers(body, delivery="d-crash")
        )
        assert (await again.json())["duplicate"] is True
        assert await storage.pending_inbound() == []


async def test_the_trigger_policy_decides_its_tool_approvals(tmp_path: Path) -> None:
    provider = FakeProvider()
    provider.queue_turn(
        ToolCall("Bash", {"command": "ls"}, say_result=True),
        ToolCall("Read", {"file_path": "README.md"}, output="read it", say_result=True),
    )
    reader = {**GITHUB, "policy": {"allow_tools": ["Read"]}}
    async with webhook_hotplex(tmp_path, {"inbound": [reader]}, provider=provider) as hp:
        async with routes_client(hp) as client:
            body = json.dumps(PR).encode()
            response = await client.post("/hooks/v1/gh", data=body, headers=github_headers(body))
            answer = (await response.json())["answer"]
        assert "tool error:" in answer.split("\n\n")[0]  # Bash: not allowed, nobody to ask
        assert answer.split("\n\n")[1] == "tool said: read it"
        assert not [c for c in hp.ops.calls if c[0] == "ask_approval"]  # nobody was asked


async def test_large_and_chunked_bodies_are_read_whole_or_refused(tmp_path: Path) -> None:
    async with triggers(tmp_path) as (hp, client):
        big = json.dumps({**PR, "padding": "p" * 300_000}).encode()  # many reads, under 1 MiB
        response = await client.post("/hooks/v1/gh", data=big, headers=github_headers(big))
        assert response.status == 200, await response.text()  # the signature covers it all

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 1000

        headers = standard_headers(b"x", "msg_chunked")  # no Content-Length: chunked
        response = await client.post("/hooks/v1/std", data=chunks(), headers=headers)
        assert response.status == 413
        assert len(hp.engine.sessions()) == 1  # the big one ran; the chunked one did not
