"""What a renderer has put on the platform, and the next write that brings it closer to
the text it should show."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hotplex.chat.split import Fences, Part, cut, next_prefix, part_between
from hotplex.interfaces import MessageOperations
from hotplex.types import ChatCapabilities, MessageRef

__all__ = ["Delivery", "Write"]

Write = Callable[[], Awaitable[None]]
#: Failed writes to one message before its native stream is given up for ``update``, and
#: before ``update`` is given up for a new message.
_STREAM_FAILURES, _UPDATE_FAILURES = 2, 4


@dataclass
class _Message:
    ref: MessageRef | None = None
    shown: str = ""
    upto: int = 0  # how far into the escaped text the shown body reaches
    streaming: bool = False
    failures: int = 0
    started: float = 0.0  # when its native stream started


class Delivery:
    """The messages of one answer. :meth:`next_write` compares what each message shows
    with what it should show (the escaped text, split within the limits) and returns the
    one call that closes the first difference, or None."""

    def __init__(
        self,
        operations: MessageOperations,
        address: str,
        caps: ChatCapabilities,
        clock: Callable[[], float],
    ) -> None:
        self._clock = clock
        self._ops = operations
        self._address = address
        self._caps = caps
        self._messages: list[_Message] = []
        self._sealed: list[tuple[Part, str]] = []  # (part, its body), never cut again
        self._target: _Message | None = None
        self._status_shown: str | None = None
        self._rotated: list[int] = []  # where a message ended because its stream grew old
        self._now = 0.0
        self.status: str | None = None
        self.starts_message = False
        """Whether the last write :meth:`next_write` returned creates a message (``send``,
        ``start_stream``): it may make the conversation's first visible text."""

    def escaped(self, text: str) -> str:
        return self._caps.escape(text)

    def refs(self) -> list[MessageRef]:
        return [m.ref for m in self._messages if m.ref is not None]

    def failed(self) -> None:
        """The last write returned by :meth:`next_write` failed."""
        if self._target is not None:
            self._target.failures += 1

    # -- what the messages should show -------------------------------------------------

    def _parts(self, escaped: str, *, growing: bool) -> tuple[list[Part], Part]:
        """The sealed parts (cutting more as the text outgrows them) and the open one."""
        caps = self._caps
        kept = 0
        for part, body in self._sealed:
            if escaped[part.start : part.end] != body:
                break
            kept += 1
        del self._sealed[kept:]
        fences = Fences(escaped)
        offset, prefix = 0, ""
        if self._sealed:
            offset = self._sealed[-1][0].end
            prefix = next_prefix(fences, self._sealed[-1][0])
        for _ in range(len(escaped) + 1):
            index = len(self._sealed)
            shown = self._messages[index].upto if index < len(self._messages) else 0
            if caps.streaming != "native":
                shown = 0  # what an edit shows may change: cut where it reads best
            part = cut(
                fences, offset, limit=caps.max_message_length, length=caps.length,
                prefix=prefix, min_end=min(max(shown, offset), len(escaped)), growing=growing,
            )  # fmt: skip
            early = next((c for c in self._rotated if offset < c < part.end), None)
            if early is not None:  # a stream ended there: the next message goes on from it
                part = part_between(
                    fences, offset, early, limit=caps.max_message_length, length=caps.length,
                    prefix=prefix,
                )  # fmt: skip
            if part.end >= len(escaped):
                return [p for p, _ in self._sealed], part
            self._sealed.append((part, escaped[part.start : part.end]))
            offset, prefix = part.end, next_prefix(fences, part)
        raise AssertionError("the splitter did not advance")

    def _targets(self, text: str, footer: str | None) -> list[tuple[str, bool, int]]:
        """(text, complete, how far into the escaped text it reaches) per message."""
        caps, measure = self._caps, self._caps.length
        escaped = self.escaped(text)
        self._rotate_old_streams(len(escaped))
        sealed, last = self._parts(escaped, growing=footer is None)
        targets = [(p.text, True, p.end) for p in sealed]
        body = last.text if last.end > last.start else ""
        if footer is not None:
            if footer and body and measure(f"{body}\n\n{footer}") <= caps.max_message_length:
                targets.append((f"{body}\n\n{footer}", True, last.end))
            else:
                targets += [(t, True, last.end) for t in (body, footer) if t]
            if not targets and self._messages:
                targets.append(("…", True, 0))
            return targets
        line = self.escaped(self.status) if self.status else ""
        if caps.streaming == "edit" and line:
            with_line = f"{body}\n\n⏳ {line}" if body else f"⏳ {line}"
            if measure(with_line) <= caps.max_message_length:
                return [*targets, (with_line, False, last.end)]
        if body:
            targets.append((body, False, last.end))
        return targets

    # -- the next call -------------------------------------------------------------------

    def next_write(self, text: str, footer: str | None) -> Write | None:
        """The next call, or None when every message shows what it should. ``footer`` is
        None while the turn runs and the final footer (maybe empty) once it ended."""
        self._now = self._clock()  # one reading: a stream is old for the whole decision
        self.starts_message = False
        targets = self._targets(text, footer)
        for index, (target, complete, upto) in enumerate(targets):
            message = self._messages[index] if index < len(self._messages) else _Message()
            write = self._write_for(message, target, complete=complete)
            if write is not None:
                if index >= len(self._messages):
                    self._messages.append(message)
                self.starts_message = message.ref is None
                self._target = message
                return self._tracked(write, message, upto)
        for message in self._messages[len(targets) :]:
            if message.ref is not None:
                return self._tracked(self._delete(message), message, 0)
        status = None if footer is not None or self._caps.streaming == "edit" else self.status
        if status != self._status_shown:
            self._target = None
            return self._set_status(status)
        return None

    def clear_status(self) -> Write | None:
        """The write that removes the status shown, or None: a reply the user stopped is
        written no more, but leaves no “thinking” behind."""
        if self._status_shown is None:
            return None
        self._target = None
        return self._set_status(None)

    def _rotate_old_streams(self, length: int) -> None:
        """A native stream older than ``stream_lifetime`` ends where it is once there is
        more to show (``length``: of the escaped text): its message is complete up to what
        it shows, and the answer goes on in a new message (a new stream)."""
        lifetime = self._caps.stream_lifetime
        if self._caps.streaming != "native" or lifetime is None:
            return
        for message in self._messages:
            old = message.streaming and self._now - message.started >= lifetime
            if old and 0 < message.upto < length and message.upto not in self._rotated:
                self._rotated.append(message.upto)
                self._rotated.sort()

    def _tracked(self, write: Write, message: _Message, upto: int) -> Write:
        async def run() -> None:
            await write()
            message.upto = upto
            message.failures = 0

        self._target = message
        return run

    def _write_for(self, message: _Message, target: str, *, complete: bool) -> Write | None:
        mode = self._caps.streaming
        if mode == "send" and not complete:
            return None
        if message.failures >= _UPDATE_FAILURES and message.ref is not None:
            message.ref, message.shown, message.streaming = None, "", False
        if mode == "native" and message.failures < _STREAM_FAILURES:
            if message.ref is None:
                return self._start(message, target)
            lifetime = self._caps.stream_lifetime
            expired = lifetime is not None and self._now - message.started >= lifetime
            if message.streaming and target.startswith(message.shown) and (complete or not expired):
                delta = target[len(message.shown) :]
                if complete:
                    return self._stop(message, delta)
                return self._append(message, delta) if delta else None
            if message.streaming and expired and target == message.shown:
                return None  # it ends when more comes (a new stream) or with the final text
            if message.streaming:
                return self._stop(message, "")
        if message.ref is None:
            return self._send(message, target)
        if message.shown != target:
            return self._update(message, target)
        return None

    def _send(self, message: _Message, text: str) -> Write:
        async def write() -> None:
            message.ref = await self._ops.send(self._address, text)
            message.shown = text

        return write

    def _update(self, message: _Message, text: str) -> Write:
        async def write() -> None:
            assert message.ref is not None
            await self._ops.update(message.ref, text)
            message.shown, message.streaming = text, False

        return write

    def _start(self, message: _Message, text: str) -> Write:
        async def write() -> None:
            message.ref = await self._ops.start_stream(self._address, text)
            message.shown, message.streaming = text, True
            message.started = self._clock()

        return write

    def _append(self, message: _Message, delta: str) -> Write:
        async def write() -> None:
            assert message.ref is not None
            await self._ops.append_stream(message.ref, delta)
            message.shown += delta

        return write

    def _stop(self, message: _Message, delta: str) -> Write:
        async def write() -> None:
            assert message.ref is not None
            await self._ops.stop_stream(message.ref, delta)
            message.shown, message.streaming = message.shown + delta, False

        return write

    def _delete(self, message: _Message) -> Write:
        async def write() -> None:
            assert message.ref is not None
            await self._ops.delete(message.ref)
            self._messages.remove(message)

        return write

    def _set_status(self, status: str | None) -> Write:
        line = self.escaped(status) if status else None

        async def write() -> None:
            await self._ops.set_status(self._address, line)
            self._status_shown = status

        return write
