"""Core's MessageOperations conformance suite on the Feishu operations, against the fake
Feishu (the real lark-oapi client)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from hotplex_feishu.api import FeishuApi
from hotplex_feishu.cards import TEMPLATE_SPEC, CardTemplates
from hotplex_feishu.operations import FeishuOperations

from hotplex.address import AddressLike
from hotplex.interfaces import MessageOperations
from hotplex.templating import make_environment
from hotplex.testing.chat_conformance import MessageOperationsConformance
from hotplex.testing.feishu import FakeFeishu
from hotplex.types import MessageRef


class TestFeishuOperations(MessageOperationsConformance):
    broadcasts = ('<at user_id="all"></at>', "<at id=all></at>", "<at user_id=all>", "@all")

    def mentions_everyone(self, shown: str) -> bool:
        return "<at" in shown  # card markdown mentions only through an at tag

    @pytest.fixture
    async def fake(self) -> AsyncIterator[FakeFeishu]:
        async with FakeFeishu() as fake:
            yield fake

    @pytest.fixture
    def operations(self, fake: FakeFeishu) -> MessageOperations:
        api = FeishuApi(fake.app_id, fake.app_secret, fake.base_url)
        templates = CardTemplates(make_environment({"feishu": TEMPLATE_SPEC}))
        ops = FeishuOperations(api, lambda: templates, min_update_interval=0.05)
        ops.fake = fake  # type: ignore[attr-defined]
        return ops

    @pytest.fixture
    def address(self, fake: FakeFeishu) -> AddressLike:
        fake.add_chat("oc_conf", "group", members=["ou_alice"])
        return f"feishu:{fake.tenant_key}/oc_conf"

    def shown(self, operations: Any, ref: MessageRef) -> str | None:
        view = operations.fake.message(ref.message_id)
        if view.deleted:
            return None
        if view.msg_type != "interactive" or not view.card:
            return str(view.text)
        for element in view.card.get("body", {}).get("elements", []):
            if element.get("element_id") == "answer":
                return str(element.get("content"))
        return str(view.text)

    def rate_limit_next(self, operations: Any, retry_after: float) -> None:
        operations.fake.fail_next("message.create", 99991400, reset=retry_after)
