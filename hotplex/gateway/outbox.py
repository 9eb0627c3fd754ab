"""A client's bounded queue of outgoing frames.

Events reach a client through its outbox, never straight from the engine: the engine's turn
puts nothing but ``offer`` (which never waits), and one writer task per client does the
slow part (the socket). A client that stops reading lets its outbox fill; the next ``offer``
then closes the outbox and calls ``on_overflow`` (which disconnects the client) instead of
waiting, so one stuck client slows nobody else down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["Outbox"]


class Outbox:
    def __init__(
        self, maxsize: int, *, on_overflow: Callable[[], None], put_timeout: float
    ) -> None:
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize)
        self._on_overflow = on_overflow
        self._put_timeout = put_timeout
        self.closed = False
        self.overflowed = False

    def offer(self, frame: str) -> bool:
        """Queue ``frame`` without waiting; False when the outbox is (now) closed."""
        if self.closed:
            return False
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self._overflow()
            return False
        return True

    async def put(self, frame: str | None) -> bool:
        """Queue ``frame`` (None: the end of the stream), waiting a bounded time for room:
        for replays, which must not flood the queue. A client that takes no frame in that
        time counts as stuck."""
        if self.closed:
            return False
        try:
            await asyncio.wait_for(self._queue.put(frame), self._put_timeout)
        except TimeoutError:
            self._overflow()
            return False
        return True

    async def get(self, timeout: float | None = None) -> str | None:
        """The next frame, None at the end; TimeoutError when nothing came in ``timeout``."""
        return await asyncio.wait_for(self._queue.get(), timeout)

    def close(self) -> None:
        self.closed = True

    def _overflow(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.overflowed = True
        self._on_overflow()
