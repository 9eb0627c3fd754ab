"""lark-oapi's long-connection client on a thread of its own.

``lark_oapi.ws.client`` takes an event loop when it is imported (a module-level ``loop``)
and ``Client.start()`` blocks that loop forever, so it can neither share HotPlex's loop
nor run twice in one process through the shared module. Each :class:`LongConnection`
therefore loads its own copy of that module on its own thread, after setting the thread's
new loop, so the copy's ``loop`` is that thread's loop and nothing global is touched.
Handlers run on that thread (they hand work to HotPlex's loop and return fast, so acks go
out at once). The SDK reconnects by itself, with the jitter the server configures; an
authentication failure, at start or on a reconnect, stops the connection with a clear
error. :meth:`stop` cancels the thread's tasks, closes the socket and joins the thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import logging
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from hotplex.errors import HotplexError

__all__ = ["LongConnection", "LongConnectionError"]

log = logging.getLogger(__name__)


class LongConnectionError(HotplexError):
    """The long connection stopped for good (credentials refused, server unreachable)."""


def _private_client_module() -> ModuleType:
    """A fresh copy of ``lark_oapi.ws.client`` whose ``loop`` is this thread's loop."""
    spec = importlib.util.find_spec("lark_oapi.ws.client")
    if spec is None or spec.loader is None:
        raise LongConnectionError("lark_oapi.ws.client is not installed")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class LongConnection:
    """One long connection for an app; ``state`` is ``connecting``, ``connected`` or
    ``down``. ``handler`` is a lark ``EventDispatcherHandler`` built for this mode."""

    def __init__(
        self,
        *,
        app_id: str,
        app_secret: str,
        domain: str,
        handler: Any,
        on_state: Callable[[str], None] = lambda state: None,
    ) -> None:
        self._app_id = app_id
        self._secret = app_secret
        self._domain = domain
        self._handler = handler
        self._on_state = on_state
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._stopping = False
        self._error: BaseException | None = None
        self._done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._client_obj: Any = None

    # -- the caller's side (HotPlex's loop) -------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._main, name=f"feishu-ws:{self._app_id}", daemon=True
        )
        self._thread.start()

    async def wait(self) -> None:
        """Return when the connection stopped; raise LongConnectionError when it failed."""
        await asyncio.wrap_future(self._done)

    async def stop(self, timeout: float = 10.0) -> None:
        """Cancel the thread's work, close the socket and join the thread."""
        self._stopping = True
        thread = self._thread
        if thread is None:
            return
        await asyncio.to_thread(self._started.wait, timeout)
        self._cancel_all()
        await asyncio.to_thread(thread.join, timeout)
        if thread.is_alive():
            log.warning("feishu: the long-connection thread did not end within %.0f s", timeout)

    def _cancel_all(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def cancel() -> None:
            for task in asyncio.all_tasks(loop):
                task.cancel()

        try:
            loop.call_soon_threadsafe(cancel)
        except RuntimeError:  # closed meanwhile
            pass

    # -- the thread -------------------------------------------------------------------------

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        error: BaseException | None = None
        try:
            client = self._client_obj = self._client(_private_client_module())
            self._started.set()
            if not self._stopping:
                self._on_state("connecting")
                client.start()  # blocks until cancelled or failed
        except asyncio.CancelledError:
            pass
        except BaseException as exc:
            error = self._error or exc
        finally:
            self._started.set()
            error = error or self._error
            self._close(loop)
            self._on_state("down")
            if self._done.done():  # the waiter was cancelled (HotPlex stops)
                pass
            elif error is None or (self._stopping and self._error is None):
                self._done.set_result(None)
            else:
                self._done.set_exception(self._explain(error))

    def _client(self, module: ModuleType) -> Any:
        owner = self

        class Client(module.Client):  # type: ignore[name-defined,misc]
            async def _connect(self) -> None:
                await super()._connect()
                owner._on_state("connected")

            async def _reconnect(self) -> None:
                owner._on_state("connecting")
                try:
                    await super()._reconnect()
                except Exception as exc:  # the SDK gave up: stop, do not hang silently
                    owner._error = exc
                    owner._cancel_all()
                    raise

        import lark_oapi as lark

        return Client(
            self._app_id,
            self._secret,
            log_level=lark.LogLevel.WARNING,
            event_handler=self._handler,
            domain=self._domain,
        )

    def _close(self, loop: asyncio.AbstractEventLoop) -> None:
        """Cancel what is left (the ping and receive tasks), close the socket, close the loop."""
        try:
            for _ in range(5):
                tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
                if not tasks:
                    break
                for task in tasks:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            conn = getattr(self._client_obj, "_conn", None)
            if conn is not None:  # the SDK has no close: close its socket
                loop.run_until_complete(asyncio.wait_for(conn.close(), 5.0))
            loop.run_until_complete(loop.shutdown_asyncgens())
        except Exception:
            log.exception("feishu: closing the long connection")
        finally:
            loop.close()
            asyncio.set_event_loop(None)

    def _explain(self, error: BaseException) -> LongConnectionError:
        from lark_oapi.ws.exception import ClientException

        if isinstance(error, ClientException):
            return LongConnectionError(
                f"Feishu refused the long connection of app {self._app_id}: "
                f"{getattr(error, 'msg', error)} (code {getattr(error, 'code', '?')}); "
                "check plugins.feishu.app_id and app_secret"
            )
        return LongConnectionError(
            f"the Feishu long connection of app {self._app_id} stopped: {error}"
        )
