"""Real lark-oapi clients pointed at the fake Feishu, for the fake's own tests.

- :func:`lark_client`: ``lark.Client`` with the fake's credentials and domain;
- :class:`WebhookReceiver`: an aiohttp app on 127.0.0.1 that hands each POST to lark-oapi's
  ``EventDispatcherHandler.do`` (decryption, token and signature checks included);
- :class:`WsClientThread`: ``lark.ws.Client`` on its own thread with its own event loop (it
  drives a module-level loop and blocks), stopped and joined cleanly.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import lark_oapi as lark
import lark_oapi.ws.client as lark_ws_client
from aiohttp import web
from lark_oapi.core.model import RawRequest

from hotplex.testing.feishu import FakeFeishu

JOIN_TIMEOUT = 10.0


def lark_client(fs: FakeFeishu, *, app_secret: str | None = None) -> lark.Client:
    return (
        lark.Client.builder()
        .app_id(fs.app_id)
        .app_secret(fs.app_secret if app_secret is None else app_secret)
        .domain(fs.base_url)
        .timeout(10)
        .log_level(lark.LogLevel.ERROR)
        .build()
    )


def forget_token(fs: FakeFeishu) -> None:
    """Drop the SDK's process-wide cached tenant token of the fake's app."""
    from lark_oapi.core.token.manager import TokenManager

    TokenManager.cache.set(f"self_tenant_token:{fs.app_id}", "", 0)


class Recorder:
    """Handlers for the dispatcher that record what they got."""

    def __init__(self, card_answer: dict[str, Any] | None = None) -> None:
        self.messages: list[Any] = []
        self.clicks: list[Any] = []
        self.card_answer = card_answer
        self.fail = False
        self.delay = 0.0  # seconds the message handler blocks (it runs on the SDK's loop)

    def on_message(self, data: Any) -> None:
        if self.fail:
            raise RuntimeError("handler failed on purpose")
        if self.delay:
            time.sleep(self.delay)
        self.messages.append(data)

    def on_click(self, data: Any) -> Any:
        from lark_oapi.event.callback.model.p2_card_action_trigger import (
            P2CardActionTriggerResponse,
        )

        self.clicks.append(data)
        # never None: in HTTP mode lark-oapi answers a None result with a 500
        return P2CardActionTriggerResponse(self.card_answer or {})

    def handler(self, encrypt_key: str = "", verification_token: str = "") -> Any:
        return (
            lark.EventDispatcherHandler.builder(
                encrypt_key, verification_token, lark.LogLevel.ERROR
            )
            .register_p2_im_message_receive_v1(self.on_message)
            .register_p2_card_action_trigger(self.on_click)
            .build()
        )


class WebhookReceiver:
    """POST / to ``handler.do``; the raw requests are kept in ``requests``."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/feishu/events"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        self.requests.append((headers, body))
        raw = RawRequest()
        raw.uri = request.path
        raw.headers = headers
        raw.body = body
        answer = self.handler.do(raw)
        return web.Response(
            status=answer.status_code, body=answer.content, content_type="application/json"
        )


class WsClientThread:
    """``lark.ws.Client(...).start()`` on a thread of its own; ``stop()`` ends it."""

    def __init__(self, fs: FakeFeishu, handler: Any, *, app_secret: str | None = None) -> None:
        self._fs = fs
        self._handler = handler
        self._secret = fs.app_secret if app_secret is None else app_secret
        self.loop = asyncio.new_event_loop()
        self.error: BaseException | None = None
        self.client: Any = None
        self.thread = threading.Thread(target=self._run, name="lark-ws", daemon=True)

    def start(self) -> WsClientThread:
        self.thread.start()
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        lark_ws_client.loop = self.loop  # the SDK drives this module-level loop
        self.client = lark.ws.Client(
            self._fs.app_id,
            self._secret,
            event_handler=self._handler,
            domain=self._fs.base_url,
            log_level=lark.LogLevel.ERROR,
        )
        try:
            self.client.start()
        except RuntimeError as error:  # the loop was stopped by stop()
            if "Event loop stopped" not in str(error):
                self.error = error
        except Exception as error:
            self.error = error
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        tasks = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        conn = getattr(self.client, "_conn", None)
        if conn is not None:
            self.loop.run_until_complete(conn.close())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def stop(self) -> None:
        if self.thread.is_alive() and not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(self.loop.stop)
            except RuntimeError:
                pass
        self.thread.join(timeout=JOIN_TIMEOUT)
        assert not self.thread.is_alive(), "the lark ws thread did not stop"


def thread_names() -> Callable[[], list[str]]:
    """Names of the live threads, for leak checks."""
    return lambda: sorted(t.name for t in threading.enumerate())
