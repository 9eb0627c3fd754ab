"""``TurnLedger``: an optional capability of a storage backend, used by the engine when the
backend has it (:class:`~hotplex.storage.sql.SqlStorage` does).

The :class:`~hotplex.interfaces.Storage` interface records a turn in three transactions
(``enqueue_turn``, ``start_turn``, ``finish_turn``) and the session after it in a fourth
(``save_session``). Each is a commit (an fsync on SQLite with ``synchronous=FULL``), and two
of them stand between a client's prompt and the agent. A ledger backend does the same work
in two transactions: one when the turn is accepted (stored as ``started`` at once when the
session's worker takes it next, with the inbound message it answers marked done, or inserted
as done when it was never recorded), and one when it ends (finished, with the session's
record). The states and what a restart does with them are unchanged (docs/storage.md).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol, runtime_checkable

from hotplex.storage.records import SessionRecord
from hotplex.types import IncomingMessage

__all__ = ["TurnLedger"]


@runtime_checkable
class TurnLedger(Protocol):
    async def accept_turn(
        self,
        session_id: str,
        turn_id: str,
        prompt: str,
        *,
        request_id: str | None = None,
        user: str | None = None,
        inbound: IncomingMessage | None = None,
        started: bool = False,
    ) -> None:
        """``enqueue_turn`` in one transaction; ``started``: store the turn as started
        (its worker takes it next, so no ``start_turn`` follows). ``inbound`` is marked
        done, or inserted as done if it was never recorded."""
        ...

    def synced(self) -> Awaitable[None]:
        """Done once every turn accepted so far survives power loss. ``accept_turn`` may
        return once its transaction survives a crash of the daemon and sync the rest while
        the prompt goes to the agent; nothing of the turn is published before this."""
        ...

    async def end_turn(self, turn_id: str, status: str, session: SessionRecord) -> None:
        """``finish_turn`` and ``save_session(session)`` in one transaction."""
        ...
