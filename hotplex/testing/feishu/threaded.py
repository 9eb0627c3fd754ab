"""An aiohttp app served on 127.0.0.1 from its own thread and event loop, and change
notification that wakes waiters on any other loop.

The fake runs on its own thread because lark-oapi fetches tenant tokens with blocking
``requests``, even from its async methods: a fake on the caller's loop would deadlock on
the first token fetch.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

from aiohttp import web

__all__ = ["Changes", "LoopThread", "ServedFromThread"]

T = TypeVar("T")
_START_TIMEOUT = 10.0


class LoopThread:
    """Serves ``make_app()`` while started; ``before_cleanup`` runs on the loop at close."""

    def __init__(
        self,
        name: str,
        make_app: Callable[[], web.Application],
        before_cleanup: Callable[[], Awaitable[None]],
    ) -> None:
        self._name = name
        self._make_app = make_app
        self._before_cleanup = before_cleanup
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    def start(self) -> None:
        """Returns once the port is bound."""
        if self._thread is not None:
            raise RuntimeError(f"{self._name} is already running")
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name=self._name, daemon=True
        )
        self._thread.start()
        try:
            ready.result(timeout=_START_TIMEOUT)
        except BaseException:
            self._thread.join(timeout=_START_TIMEOUT)
            self._thread = None
            raise

    def _serve(self, ready: concurrent.futures.Future[None]) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._bind())
        except BaseException as error:
            ready.set_exception(error)
            loop.close()
            return
        self._loop = loop
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._unbind())
            loop.close()

    async def _bind(self) -> None:
        runner = web.AppRunner(
            self._make_app(), handle_signals=False, shutdown_timeout=1.0, access_log=None
        )
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def _unbind(self) -> None:
        try:
            await asyncio.wait_for(self._before_cleanup(), _START_TIMEOUT)
        finally:
            if self._runner is not None:
                await self._runner.cleanup()

    def close(self) -> None:
        """Stop serving and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=_START_TIMEOUT * 2)
        self._loop = self._thread = None
        self.port = 0

    def run(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Run ``coro`` on the server's loop; await the result from the caller's loop."""
        if self._loop is None:
            coro.close()
            raise RuntimeError(f"{self._name} is not running")
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))


class Changes:
    """``changed()`` from any thread wakes every ``wait_for`` on any loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def changed(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed
                pass

    async def wait_for(self, predicate: Callable[[], object], timeout: float) -> None:
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        with self._lock:
            self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event.clear()
                    if predicate():
                        return
                    await event.wait()
        except TimeoutError:
            raise TimeoutError(f"condition not met within {timeout} s") from None
        finally:
            with self._lock:
                self._waiters.remove(waiter)


class ServedFromThread:
    """``start``/``close`` and the (async) context manager of an object served by
    ``self._server``."""

    _server: LoopThread

    def start(self) -> None:
        """Serve from a new thread; returns once the port is bound."""
        self._server.start()

    def close(self) -> None:
        """Stop serving and join the thread."""
        self._server.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.close)
