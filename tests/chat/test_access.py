"""Identity and access: namespaced identities checked at load, and the access middleware
(order 200) applying each platform's DM and group policies through the running chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from approvals_kit import running, settings_for

from hotplex.config import RouteTo
from hotplex.errors import ConfigError
from hotplex.interfaces import MiddlewareContext
from hotplex.runtime import Runtime
from hotplex.testing.fakes import FakeProvider
from hotplex.types import IncomingMessage

GROUP = "fake:w/general"
DM = "fake:w/D01"


def message(address: str = GROUP, user: str = "fake:alice", **fields: Any) -> IncomingMessage:
    return IncomingMessage(address=address, text="hello", user=user, platform="fake", **fields)


async def through(rt: Runtime, incoming: IncomingMessage) -> tuple[bool, str | None]:
    """Run ``incoming`` through the runtime's chain: whether it reached the end (a turn
    would start) and the reply it got."""
    reached: list[MiddlewareContext] = []

    async def final(ctx: MiddlewareContext) -> None:
        reached.append(ctx)

    ctx = await rt.process_inbound(incoming, final)
    if not reached:
        assert str(ctx.facts.get("refused", "")).startswith("access: ")
    return bool(reached), ctx.reply


def access(**keys: Any) -> dict[str, Any]:
    return {"plugins": {"fake": {"enabled": True, **keys}}}


async def test_group_mention_policy_and_bots(tmp_path: Path) -> None:
    async with running(tmp_path, FakeProvider(), access()) as hp:
        rt = hp.runtime
        assert await through(rt, message(mentions_bot=True)) == (True, None)
        # the channel's other chatter: no turn, no reply
        assert await through(rt, message()) == (False, None)
        assert await through(rt, message(DM, direct=True)) == (True, None)
        # a bot, ours included, starts nothing and is not answered (no loops)
        for bot in ("fake:B-other", "fake:B-ours"):
            assert await through(rt, message(DM, bot, direct=True, from_bot=True)) == (
                False,
                None,
            )
            assert await through(rt, message(user=bot, mentions_bot=True, from_bot=True)) == (
                False,
                None,
            )


async def test_an_allow_listed_bot_starts_turns(tmp_path: Path) -> None:
    async with running(tmp_path, FakeProvider(), access(allow_bots=["fake:B-ci"])) as hp:
        rt = hp.runtime
        ci = message(DM, "fake:B-ci", direct=True, from_bot=True)
        assert await through(rt, ci) == (True, None)
        other = message(DM, "fake:B-x", direct=True, from_bot=True)
        assert await through(rt, other) == (False, None)


async def test_dm_policies(tmp_path: Path) -> None:
    async with running(tmp_path, FakeProvider(), access(dm_policy="disabled")) as hp:
        reached, reply = await through(hp.runtime, message(DM, direct=True))
        assert not reached and reply is not None and "turned off" in reply
    extra = access(dm_policy="allowlist", allow_users=["fake:alice"])
    async with running(tmp_path, FakeProvider(), extra) as hp:
        assert await through(hp.runtime, message(DM, direct=True)) == (True, None)
        reached, reply = await through(hp.runtime, message(DM, "fake:mallory", direct=True))
        assert not reached and reply == "You are not allowed to use this bot."
        # the same id on another platform is another person
        reached, _ = await through(hp.runtime, message(DM, "other:alice", direct=True))
        assert not reached


async def test_group_policies_users_and_channels(tmp_path: Path) -> None:
    async with running(tmp_path, FakeProvider(), access(group_policy="disabled")) as hp:
        assert await through(hp.runtime, message()) == (False, None)
        reached, reply = await through(hp.runtime, message(mentions_bot=True))
        assert not reached and reply == "This bot does not answer in this channel."
    async with running(tmp_path, FakeProvider(), access(group_policy="open")) as hp:
        assert await through(hp.runtime, message()) == (True, None)
    extra = access(
        group_policy="mention",
        allow_users=["fake:alice"],
        allow_channels=["general", "fake:w/eng-*"],
    )
    async with running(tmp_path, FakeProvider(), extra) as hp:
        rt = hp.runtime
        assert await through(rt, message(mentions_bot=True)) == (True, None)
        assert await through(rt, message("fake:w/eng-ops/171", mentions_bot=True)) == (True, None)
        reached, reply = await through(rt, message("fake:w/random", mentions_bot=True))
        assert not reached and reply == "This bot does not answer in this channel."
        assert await through(rt, message("fake:w/random")) == (False, None)
        reached, reply = await through(rt, message(user="fake:mallory", mentions_bot=True))
        assert not reached and reply == "You are not allowed to use this bot."
    extra = access(group_policy="allowlist", allow_users=["fake:alice"])
    async with running(tmp_path, FakeProvider(), extra) as hp:
        assert await through(hp.runtime, message()) == (True, None)  # no mention needed
        assert await through(hp.runtime, message(user="fake:bob")) == (False, None)


async def test_a_platform_without_access_keys_gets_the_defaults(tmp_path: Path) -> None:
    async with running(tmp_path, FakeProvider()) as hp:
        web = IncomingMessage(
            address="web:default/s1", text="hi", user="key:ci", platform="web", direct=True
        )
        assert await through(hp.runtime, web) == (True, None)
        group = IncomingMessage(address="web:default/s1", text="hi", user="key:ci", platform="web")
        assert await through(hp.runtime, group) == (False, None)
        bot = IncomingMessage(
            address="web:default/s1",
            text="hi",
            user="web:b",
            platform="web",
            direct=True,
            from_bot=True,
        )
        assert await through(hp.runtime, bot) == (False, None)


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"security": {"approvers": ["U01"]}}, "security.approvers"),
        ({"security": {"owners": ["slack:U01", "alice"]}}, "security.owners"),
        ({"security": {"owners": ["*"]}}, "security.owners"),
        (access(allow_users=["ou_x"]), "plugins.fake.allow_users"),
        (access(allow_bots=["B01"]), "plugins.fake.allow_bots"),
    ],
)
def test_identities_must_be_namespaced(tmp_path: Path, extra: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_for(tmp_path, extra)
    text = str(caught.value)
    assert says in text and "not a namespaced identity" in text and "slack:U01ABC" in text


def test_namespaced_identities_load() -> None:
    route = RouteTo(route_to="fake:w/ops", approvers=("fake:bob", "*"))
    assert route.approvers == ("fake:bob", "*")
    with pytest.raises(ValueError, match="namespaced identity"):
        RouteTo(route_to="fake:w/ops", approvers=("bob",))
    with pytest.raises(ValueError, match="address"):
        RouteTo(route_to="ops")


def test_identities_in_a_valid_config(tmp_path: Path) -> None:
    extra = {
        "security": {"approvers": ["slack:U01", "key:ci", "*"], "owners": ["feishu:ou_x"]},
        **access(allow_users=["fake:alice"], allow_bots=["fake:B1"]),
    }
    settings = settings_for(tmp_path, extra)
    assert settings.security.approvers == ("slack:U01", "key:ci", "*")
    assert settings.security.owners == ("feishu:ou_x",)
