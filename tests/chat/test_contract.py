"""The revised adapter contract: typed message fields, approval outcomes, defaults an
adapter written before inherits."""

from __future__ import annotations

import time

import pytest

from hotplex.address import Address
from hotplex.errors import AddressError
from hotplex.interfaces import ChatAdapter, MessageOperations, approval_outcome_text
from hotplex.testing.fakes import FakeChatAdapter, FakeMessageOperations
from hotplex.types import (
    ApprovalOutcome,
    ApprovalRequest,
    Attachment,
    ChatCapabilities,
    IncomingMessage,
    MessageRef,
)


def request(kind: str = "tool", tool: str = "Bash") -> ApprovalRequest:
    now = time.time()
    return ApprovalRequest(
        permission_id="p1",
        kind=kind,  # type: ignore[arg-type]
        session_id="s1",
        address="fake:w/c",
        tool=tool,
        input={"command": "ls"},
        reason=None,
        scopes=("once", "session"),
        approvers=(),
        created_at=now,
        expires_at=now + 60,
    )


class Old(MessageOperations):
    """An adapter written before the revision: only the abstract methods."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.updated: list[tuple[MessageRef, str]] = []

    @property
    def capabilities(self) -> ChatCapabilities:
        return ChatCapabilities(escape=lambda t: t.replace("<", "&lt;"))

    async def send(self, address: Address | str, text: str) -> MessageRef:
        self.sent.append((str(address), text))
        return MessageRef(str(address), "1")

    async def update(self, ref: MessageRef, text: str) -> None:
        self.updated.append((ref, text))

    async def delete(self, ref: MessageRef) -> None:
        pass

    async def ask_approval(self, request: ApprovalRequest) -> MessageRef:
        return MessageRef(request.address or "", "2")


async def test_defaults_of_the_new_operations() -> None:
    ops = Old()
    ref = MessageRef("fake:w/c", "2")
    await ops.update_approval(ref, request(tool="<!here>"), ApprovalOutcome("deny", "fake:U1"))
    assert ops.updated == [(ref, "⛔ &lt;!here>: denied by fake:U1")]
    await ops.react(ref, "eyes")  # no-op
    await ops.reply_ephemeral(Address.parse("fake:w/c"), "fake:U2", "not you")
    assert ops.sent == [("fake:w/c", "not you")]


def test_outcome_lines() -> None:
    allow = ApprovalOutcome("allow", "slack:U1", scope="session")
    assert approval_outcome_text(request(), allow) == "✅ Bash: allowed by slack:U1 (this session)"
    deny = ApprovalOutcome("deny", "slack:U1", reason="too risky")
    assert approval_outcome_text(request(), deny) == "⛔ Bash: denied by slack:U1: too risky"
    expired = approval_outcome_text(request("prompt"), ApprovalOutcome("expired"))
    assert expired.startswith("⌛ Prompt: expired")


def test_adapter_defaults() -> None:
    class Bare(ChatAdapter):
        @property
        def operations(self) -> MessageOperations:
            return Old()

        async def run(self, deliver: object) -> None:  # type: ignore[override]
            pass

    assert Bare.platform == ""
    assert Bare().http_routes() == []
    assert FakeChatAdapter.platform == "fake"


def test_typed_message_fields_default_to_a_plain_group_message() -> None:
    m = IncomingMessage(address="fake:w/c", text="hi", user="fake:U1", platform="fake")
    assert (m.ref, m.direct, m.mentions_bot, m.from_bot, m.display_name) == (
        None,
        False,
        False,
        False,
        None,
    )


async def test_an_attachment_without_download_raises() -> None:
    a = Attachment("a.txt", 3, "text/plain", "file")
    with pytest.raises(LookupError):
        await a.download()

    async def fetch() -> bytes:
        return b"abc"

    b = Attachment("a.txt", 3, "text/plain", "file", fetch)
    assert await b.download() == b"abc"
    assert a == b  # the download is not part of the identity


def test_address_of() -> None:
    a = Address.parse("fake:w/c/t")
    assert Address.of(a) is a
    assert Address.of("fake:w/c/t") == a
    with pytest.raises(AddressError):
        Address.of("nonsense")


async def test_fake_records_the_new_operations() -> None:
    ops = FakeMessageOperations()
    ref = await ops.send(Address.parse("fake:w/c"), "x")
    assert ref.address == "fake:w/c"
    await ops.update_approval(ref, request(), ApprovalOutcome("allow", "fake:U1"))
    await ops.react(ref, "eyes")
    await ops.reply_ephemeral("fake:w/c", "fake:U1", "no")
    assert [c[0] for c in ops.calls] == ["send", "update_approval", "react", "reply_ephemeral"]
