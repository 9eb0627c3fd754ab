"""The behaviours every chat adapter's ``MessageOperations`` must have, as a pytest test
class to subclass, run against the adapter's own fake platform.

Subclass :class:`MessageOperationsConformance` in a test module (the name must start with
``Test``), give it an ``operations`` fixture (your ``MessageOperations``, talking to your
fake platform) and an ``address`` fixture (a conversation on it), and implement
:meth:`~MessageOperationsConformance.shown` and
:meth:`~MessageOperationsConformance.rate_limit_next` against the fake platform. pytest
then runs:

- ``test_send_update_delete``: a sent message shows its text, an update replaces it, a
  delete removes it; an ``Address`` object works where the text does.
- ``test_a_message_at_the_declared_limit_arrives_whole``: a message exactly
  ``max_message_length`` long (measured by ``capabilities.length``, with multi-byte
  characters) is accepted and shown complete, so the declared limit is within the
  platform's.
- ``test_escape_keeps_broadcasts_literal``: escaped agent text that tries to mention
  everyone mentions nobody (:meth:`~MessageOperationsConformance.mentions_everyone`), and
  the escape works character by character.
- ``test_native_stream`` (when ``streaming == "native"``): ``start_stream``,
  ``append_stream`` with each new part, ``stop_stream``: the message shows the whole text
  once.
- ``test_approval_card_and_its_outcome``: ``ask_approval`` shows a card in the request's
  conversation; ``update_approval`` shows the outcome and who decided.
- ``test_upload_file`` (when ``files``): an uploaded file is shown in the conversation.
- ``test_rate_limit_carries_retry_after``: the platform's rate-limit answer is raised as
  ``RateLimitedError`` with its ``retry_after``.
- ``test_react_and_reply_ephemeral``: both work (or are the defaults).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hotplex.address import Address, AddressLike
from hotplex.errors import RateLimitedError
from hotplex.interfaces import MessageOperations
from hotplex.types import ApprovalOutcome, ApprovalRequest, MessageRef

__all__ = ["BROADCASTS", "MessageOperationsConformance", "approval_request"]

#: Agent text that would mention everyone if shown unescaped (Slack, Feishu); a platform
#: with other forms overrides ``mentions_everyone`` and ``broadcasts``.
BROADCASTS = ("<!channel>", "<!here>", "<!everyone>", '<at user_id="all"></at>')
_SAMPLE = "a é 中 😀 "  # one, two, three and four UTF-8 bytes; 😀 is two UTF-16 units


def approval_request(address: str, *, tool: str = "Bash") -> ApprovalRequest:
    """A tool approval request for ``address``, pending for a minute."""
    now = time.time()
    return ApprovalRequest(
        permission_id=f"perm-{int(now * 1000)}",
        kind="tool",
        session_id="conformance",
        address=address,
        tool=tool,
        input={"command": "ls -la"},
        reason="conformance check",
        scopes=("once", "session"),
        approvers=(),
        created_at=now,
        expires_at=now + 60,
    )


class MessageOperationsConformance:
    """MessageOperations behaviours as tests; subclass it as
    ``class TestMine(MessageOperationsConformance)``.

    Fixtures to define: ``operations`` and ``address``. Methods to implement:
    :meth:`shown` and :meth:`rate_limit_next`; :meth:`mentions_everyone` has a default
    that looks for the raw broadcast forms.
    """

    # -- what the subclass provides -----------------------------------------------------

    def shown(self, operations: MessageOperations, ref: MessageRef) -> str | None:
        """The text the fake platform shows now for the message at ``ref`` (None once
        deleted), as stored by the platform (in its own markup)."""
        raise NotImplementedError("define shown(operations, ref) against your fake platform")

    def rate_limit_next(self, operations: MessageOperations, retry_after: float) -> None:
        """Make the fake platform answer the next call with its rate-limit response
        (HTTP 429 with ``Retry-After``, an error code, ...) asking for ``retry_after``."""
        raise NotImplementedError("define rate_limit_next(operations, retry_after)")

    #: The agent texts the escape check sends (default :data:`BROADCASTS`).
    broadcasts: tuple[str, ...] = BROADCASTS

    def mentions_everyone(self, shown: str) -> bool:
        """Whether text the platform shows would notify everyone. Default: it contains one
        of :attr:`broadcasts` as such; override with your platform's rules."""
        return any(form in shown for form in self.broadcasts)

    # -- helpers --------------------------------------------------------------------------

    def _shown(self, operations: MessageOperations, ref: MessageRef) -> str:
        text = self.shown(operations, ref)
        assert text is not None, f"the platform shows nothing for {ref}"
        return text

    # -- the behaviours ---------------------------------------------------------------------

    async def test_send_update_delete(
        self, operations: MessageOperations, address: AddressLike
    ) -> None:
        ref = await operations.send(address, "first version")
        assert Address.of(ref.address).platform == Address.of(address).platform
        assert self._shown(operations, ref) == "first version"
        await operations.update(ref, "second version")
        assert self._shown(operations, ref) == "second version"
        await operations.delete(ref)
        assert self.shown(operations, ref) is None
        typed = await operations.send(Address.of(address), "typed address")
        assert self._shown(operations, typed) == "typed address"

    async def test_a_message_at_the_declared_limit_arrives_whole(
        self, operations: MessageOperations, address: AddressLike
    ) -> None:
        caps = operations.capabilities
        text = ""
        for char in _SAMPLE * caps.max_message_length:  # bounded by the limit itself
            if caps.length(text + char) > caps.max_message_length:
                break
            text += char
        assert caps.length(text) >= caps.max_message_length - 3
        ref = await operations.send(address, text)
        assert self._shown(operations, ref) == text

    async def test_escape_keeps_broadcasts_literal(
        self, operations: MessageOperations, address: AddressLike
    ) -> None:
        escape = operations.capabilities.escape
        for form in self.broadcasts:
            text = f"look {form} now"
            ref = await operations.send(address, escape(text))
            assert not self.mentions_everyone(self._shown(operations, ref)), (
                f"{form!r} escaped as {escape(text)!r} still mentions everyone"
            )
            for cut in range(len(text) + 1):
                assert escape(text).startswith(escape(text[:cut])), (
                    f"escape is not character by character at {text[:cut]!r}"
                )

    async def test_native_stream(self, operations: MessageOperations, address: AddressLike) -> None:
        if operations.capabilities.streaming != "native":
            pytest.skip("the adapter does not declare native streaming")
        ref = await operations.start_stream(address, "Hel")
        await operations.append_stream(ref, "lo, ")
        await operations.append_stream(ref, "wor")
        await operations.stop_stream(ref, "ld")
        assert self._shown(operations, ref) == "Hello, world"

    async def test_approval_card_and_its_outcome(
        self, operations: MessageOperations, address: AddressLike
    ) -> None:
        request = approval_request(str(address))
        ref = await operations.ask_approval(request)
        assert Address.of(ref.address).channel == Address.of(address).channel
        card = self._shown(operations, ref)
        await operations.update_approval(
            ref, request, ApprovalOutcome("deny", by="conformance:U1", reason="not now")
        )
        outcome = self._shown(operations, ref)
        assert outcome != card, "update_approval left the card as it was"
        assert "conformance:U1" in outcome or "U1" in outcome, "the card does not say who decided"

    async def test_upload_file(
        self, operations: MessageOperations, address: AddressLike, tmp_path: Path
    ) -> None:
        if not operations.capabilities.files:
            pytest.skip("the adapter does not declare files")
        path = tmp_path / "report.txt"
        path.write_text("conformance\n")
        ref = await operations.upload_file(address, path, "the report")
        assert self.shown(operations, ref) is not None

    async def test_rate_limit_carries_retry_after(
        self, operations: MessageOperations, address: AddressLike
    ) -> None:
        self.rate_limit_next(operations, 2.5)
        with pytest.raises(RateLimitedError) as caught:
            await operations.send(address, "too fast")
        assert caught.value.retry_after == pytest.approx(2.5, abs=0.5)
        ref = await operations.send(address, "later")  # the next call goes through
        assert self._shown(operations, ref) == "later"

    async def test_react_and_reply_ephemeral(
        self, operations: MessageOperations, address: AddressLike
    ) -> None:
        ref = await operations.send(address, "react to me")
        if operations.capabilities.reactions:
            await operations.react(ref, "eyes")
        await operations.reply_ephemeral(address, "conformance:U2", "only you")
