"""The Open API client: the tenant token refreshed before it expires and once after an
invalid-token answer (not more), rate limits as RateLimitedError, refusals explained."""

from __future__ import annotations

import pytest
from hotplex_feishu.api import FeishuApi, FeishuApiError, FeishuAuthError

from hotplex.errors import RateLimitedError
from hotplex.testing.feishu import FakeFeishu


async def test_the_token_is_refreshed_before_it_expires() -> None:
    now = [1000.0]
    async with FakeFeishu() as fake:
        api = FeishuApi(fake.app_id, fake.app_secret, fake.base_url, clock=lambda: now[0])
        first = await api.token()
        assert await api.token() == first  # cached
        now[0] += 7200 - 600 - 1  # just before the refresh point
        assert await api.token() == first
        now[0] += 2  # ten minutes before it expires
        await api.token()
        assert len(fake.calls_named("tenant_access_token.internal")) == 2


async def test_an_invalid_token_is_fetched_again_once() -> None:
    async with FakeFeishu() as fake:
        api = FeishuApi(fake.app_id, fake.app_secret, fake.base_url)
        await api.bot_open_id()
        fake.expire_tokens()
        assert await api.bot_open_id() == fake.bot_open_id
        assert len(fake.calls_named("tenant_access_token.internal")) == 2
        # a token refused twice in a row is an error, not a loop
        fake.fail_next("bot.info", 99991663, times=2)
        with pytest.raises(FeishuApiError, match="99991663"):
            await api.bot_open_id()
        assert len(fake.calls_named("tenant_access_token.internal")) == 3


async def test_rate_limits_and_refusals() -> None:
    async with FakeFeishu() as fake:
        api = FeishuApi(fake.app_id, fake.app_secret, fake.base_url)
        fake.fail_next("bot.info", 99991400, reset=3)
        with pytest.raises(RateLimitedError) as caught:
            await api.bot_open_id()
        assert caught.value.retry_after == 3
        fake.fail_next("bot.info", 230020)  # Feishu's per-chat frequency limit
        with pytest.raises(RateLimitedError):
            await api.bot_open_id()
        fake.fail_next("bot.info", 230002, msg="bot not in chat")
        with pytest.raises(FeishuApiError, match="bot not in chat"):
            await api.bot_open_id()
        wrong = FeishuApi(fake.app_id, "wrong", fake.base_url)
        with pytest.raises(FeishuAuthError, match=f"tenant token for app {fake.app_id}"):
            await wrong.token()
