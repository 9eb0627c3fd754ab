"""``/admin/v1/cron/...`` on the gateway, and ``/cron`` in a chat."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from aiohttp.test_utils import TestClient, TestServer
from cron_kit import Start, start_cron, until
from hotplex_cron import plugin

from hotplex.compose import compose
from hotplex.config import load_settings
from hotplex.gateway import build_app
from hotplex.plugins import make_plugin_manager
from hotplex.testing.fakes import FakeChatAdapter, FakeProvider
from hotplex.testing.running import FakePlatformPlugin

TOKEN = "admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
JOBS = "/admin/v1/cron/jobs"


async def test_the_admin_api_manages_jobs_and_says_what_is_wrong(tmp_path: Path) -> None:
    adapter = FakeChatAdapter()
    pm = make_plugin_manager(
        entry_points=False,
        environ={},
        extra=[("fake_platform", FakePlatformPlugin(adapter, FakeProvider())), ("cron", plugin)],
    )
    raw: dict[str, Any] = {
        "engine": {"data_dir": str(tmp_path / "data")},
        "provider": {"type": "fake"},
        "server": {"admin_token": TOKEN, "rate_limit": {"enabled": False}},
        "plugins": {"fake": {"enabled": True}, "cron": {"min_interval": "1s"}},
    }
    settings = load_settings(
        None, text=yaml.safe_dump(raw), sections=pm.config_sections().values(), environ={}
    ).settings
    async with TestClient(TestServer(build_app(compose(settings, pm)), host="127.0.0.1")) as c:
        assert (await c.get(JOBS)).status == 401  # the admin token, like all of /admin
        three = {"name": "x", "schedule": "* * *", "prompt": "p"}
        bad = await c.post(JOBS, json=three, headers=ADMIN)
        assert bad.status == 400
        error = (await bad.json())["error"]
        assert error["code"] == "invalid_job" and "expected 5 fields" in error["message"]
        short = await c.post(
            JOBS, json={"name": "x", "schedule": "every 0.5s", "prompt": "p"}, headers=ADMIN
        )
        assert (await short.json())["error"]["code"] == "invalid_job"
        job = {"name": "daily", "schedule": "0 9 * * *", "prompt": "hi",
               "timezone": "Asia/Tokyo", "deliver_to": ["fake:w/C1"]}  # fmt: skip
        added = await c.post(JOBS, json=job, headers=ADMIN)
        assert added.status == 201
        body = (await added.json())["job"]
        assert body["source"] == "admin" and body["next_fire"].endswith("T09:00:00+09:00")
        again = await c.post(JOBS, json=job, headers=ADMIN)
        assert "exists already" in (await again.json())["error"]["message"]
        edited = await c.patch(f"{JOBS}/daily", json={"schedule": "30 8 * * *"}, headers=ADMIN)
        assert (await edited.json())["job"]["next_fire"].endswith("T08:30:00+09:00")
        paused = await (await c.post(f"{JOBS}/daily/pause", headers=ADMIN)).json()
        assert paused["job"]["enabled"] is False and paused["job"]["next_fire"] is None
        ran = await c.post(f"{JOBS}/daily/run", headers=ADMIN)
        assert ran.status == 202

        async def finished() -> bool:
            runs = (await (await c.get(f"{JOBS}/daily/runs", headers=ADMIN)).json())["runs"]
            return bool(runs) and runs[0]["status"] == "ok"

        await until(finished)
        assert any("echo: hi" in text for text in adapter.operations.texts("fake:w/C1"))
        listed = await (await c.get(JOBS, headers=ADMIN)).json()
        assert [j["name"] for j in listed["jobs"]] == ["daily"]
        assert listed["scheduler"]["holder"]
        assert (await c.get(f"{JOBS}/daily/runs?limit=0", headers=ADMIN)).status == 400
        assert (await c.delete(f"{JOBS}/daily", headers=ADMIN)).status == 200
        missing = await c.get(f"{JOBS}/daily", headers=ADMIN)
        assert missing.status == 404
        assert (await missing.json())["error"]["code"] == "unknown_job"
        not_json = await c.post(JOBS, data=b"{", headers=ADMIN)
        assert (await not_json.json())["error"]["message"] == "the body is not JSON"


async def test_the_chat_command_lists_for_anyone_and_changes_for_owners(
    running_hotplex: Start,
) -> None:
    hp, cron = await start_cron(running_hotplex)
    assert hp.runtime.settings.security.owners == ()

    async def say(text: str, user: str = "fake:U1") -> str | None:
        return await hp.runtime.chat_commands.handle(
            text,
            address="fake:w/C1",
            user=user,
            platform="fake",
            services=hp.runtime.ctx.services,
        )

    assert await say("/cron") == "No cron jobs."
    assert await say("/cron add nightly every 1h | check it") == (
        "/cron add is for owners only (security.owners)."
    )
    await cron.add({"name": "nightly", "schedule": "every 1h", "prompt": "p"}, source="cli")
    listed = await say("/cron list")
    assert listed is not None and listed.startswith("nightly (cli, enabled): every 1h UTC; next ")
    assert await say("/cron history nightly") == "nightly: no runs yet"
    assert await say("/cron history nope") == "no cron job named 'nope'"


async def test_an_owner_adds_a_job_from_a_chat_that_answers_there(
    running_hotplex: Start,
) -> None:
    hp, cron = await start_cron(running_hotplex, extra={"security": {"owners": ["fake:boss"]}})
    del cron

    async def say(text: str) -> str | None:
        return await hp.runtime.chat_commands.handle(
            text, address="fake:w/C7", user="fake:boss", platform="fake",
            services=hp.runtime.ctx.services,
        )  # fmt: skip

    added = await say("/cron add standup 0 9 * * mon-fri | what is open?")
    assert added is not None and added.startswith("Added standup (chat, enabled)")
    assert (await say("/cron run standup") or "").startswith("standup: run ")
    await hp.ops.wait_for(lambda: any("echo: what is open" in t for t in hp.ops.texts("fake:w/C7")))
    assert await say("/cron add broken | x") == (
        "usage: /cron list | history NAME | run NAME | pause NAME | resume NAME | remove NAME"
        " | add NAME <schedule> | <prompt>"
    )
    assert (await say("/cron pause standup") or "").startswith("standup (chat, paused)")
