"""Core's MessageOperations conformance suite, run on the Slack adapter's operations
against the fake Slack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from hotplex_slack.api import make_client
from hotplex_slack.operations import SlackOperations
from hotplex_slack.settings import SlackSettings

from hotplex.address import AddressLike
from hotplex.testing.chat_conformance import MessageOperationsConformance
from hotplex.testing.slack import FakeSlack
from hotplex.types import MessageRef


class TestSlackOperations(MessageOperationsConformance):
    slack: FakeSlack
    root: str

    @pytest_asyncio.fixture
    async def operations(self) -> AsyncIterator[SlackOperations]:
        async with FakeSlack() as slack:
            slack.add_channel("C1", members=["U1", "U2"])
            self.slack = slack
            self.root = await slack.user_message("C1", "U1", "the thread we answer in")
            client = make_client(slack.bot_token, base_url=slack.api_base_url, timeout=5)
            yield SlackOperations(client, SlackSettings())

    @pytest_asyncio.fixture
    async def address(self, operations: SlackOperations) -> AddressLike:
        return f"slack:{self.slack.team_id}/C1/{self.root}"

    def shown(self, operations: Any, ref: MessageRef) -> str | None:
        if ref.message_id.startswith("F"):  # an uploaded file
            record = self.slack.files.get(ref.message_id)
            return None if record is None else record.title
        try:
            return self.slack.message(ref.message_id).text
        except KeyError:
            return None

    def rate_limit_next(self, operations: Any, retry_after: float) -> None:
        # slack-sdk waits out one 429 itself; the second reaches core as RateLimitedError
        self.slack.fail_next("chat.postMessage", "ratelimited", retry_after=retry_after, times=2)
