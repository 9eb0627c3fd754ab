"""The MessageOperations conformance suite, run on the fake chat platform, and shown to
fail where an adapter lacks a behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotplex.address import AddressLike
from hotplex.chat import utf16_length
from hotplex.interfaces import MessageOperations
from hotplex.testing.chat_conformance import MessageOperationsConformance
from hotplex.testing.fakes import FakeMessageOperations
from hotplex.types import ChatCapabilities, MessageRef


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


CAPS = ChatCapabilities(
    max_message_length=300,
    streaming="native",
    min_update_interval=0.0,
    buttons=True,
    files=True,
    reactions=True,
    escape=slack_escape,
    length=utf16_length,
)


class FakeConformance(MessageOperationsConformance):
    def shown(self, operations: MessageOperations, ref: MessageRef) -> str | None:
        assert isinstance(operations, FakeMessageOperations)
        return operations.shown(ref)

    def rate_limit_next(self, operations: MessageOperations, retry_after: float) -> None:
        assert isinstance(operations, FakeMessageOperations)
        operations.rate_limit_next(1, retry_after)


class TestFakePlatform(FakeConformance):
    @pytest.fixture
    def operations(self) -> MessageOperations:
        return FakeMessageOperations(CAPS)

    @pytest.fixture
    def address(self) -> AddressLike:
        return "fake:w/C1"


class TestFakePlatformWithDefaults(FakeConformance):
    """Edit-in-place without files: the stream and upload checks are skipped."""

    @pytest.fixture
    def operations(self) -> MessageOperations:
        return FakeMessageOperations(ChatCapabilities(escape=slack_escape))

    @pytest.fixture
    def address(self) -> AddressLike:
        return "fake:w/C1/1700.1"


# -- the suite catches what is missing ---------------------------------------------------


class Truncating(FakeMessageOperations):
    """Declares more than the platform takes: the platform cuts messages at 200."""

    async def send(self, address: AddressLike, text: str) -> MessageRef:
        return await super().send(address, text[:200])


class RateLimitAsPlainError(FakeMessageOperations):
    def rate_limit_next(
        self, count: int = 1, retry_after: float = 0.05, *, methods: tuple[str, ...] = ()
    ) -> None:
        self.fail_next(count, RuntimeError("HTTP 429"))


class WholeTextStream(FakeMessageOperations):
    """Appends the whole text again instead of the new part (a pre-revision adapter)."""

    async def append_stream(self, ref: MessageRef, delta: str) -> None:
        await super().append_stream(ref, (self.shown(ref) or "") + delta)


@pytest.mark.parametrize(
    ("broken", "test", "caps"),
    [
        (Truncating, "test_a_message_at_the_declared_limit_arrives_whole", CAPS),
        (FakeMessageOperations, "test_escape_keeps_broadcasts_literal", ChatCapabilities()),
        (RateLimitAsPlainError, "test_rate_limit_carries_retry_after", CAPS),
        (WholeTextStream, "test_native_stream", CAPS),
    ],
)
async def test_the_suite_fails_where_a_behaviour_is_missing(
    broken: type[FakeMessageOperations], test: str, caps: ChatCapabilities, tmp_path: Path
) -> None:
    suite = FakeConformance()
    with pytest.raises((AssertionError, RuntimeError)):
        await getattr(suite, test)(broken(caps), "fake:w/C1")
