"""A fake webhook receiver on 127.0.0.1 that verifies with the ``standardwebhooks`` package
(the reference implementation from PyPI, not HotPlex's code) and answers as scripted::

    async with WebhookReceiver(secret) as receiver:        # receiver.url is its endpoint
        receiver.script(500, Reply(429, retry_after=2), 200)  # then 200 for ever
        await receiver.wait_for(lambda: len(receiver.verified_ids()) == 3)

Every request is recorded (:class:`Received`: its ``webhook-id``, body, whether it
verified, what was answered, when). ``verified_ids()`` is the set of ids the receiver
accepted, which is what a receiver de-duplicating on ``webhook-id`` processes exactly once.
A scripted reply can delay (a hanging receiver), set ``Retry-After``, answer 410, or
redirect to ``/elsewhere`` (counted in ``elsewhere_hits``, which a client following
redirects would raise).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

__all__ = ["Received", "Reply", "WebhookReceiver"]


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer: ``status``, after ``delay`` seconds; ``retry_after`` sets the
    header; a 3xx gets ``Location: /elsewhere``."""

    status: int = 200
    delay: float = 0.0
    retry_after: float | str | None = None


@dataclass(frozen=True, slots=True)
class Received:
    webhook_id: str
    timestamp: str
    signature: str
    body: bytes
    verified: bool
    error: str | None
    answered: int
    at: float = field(default_factory=time.time)

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """A Standard Webhooks receiver for tests (``secrets``: it accepts any of them)."""

    def __init__(self, *secrets: str, path: str = "/hook") -> None:
        from standardwebhooks.webhooks import Webhook

        if not secrets:
            raise ValueError("a receiver needs at least one whsec_ secret")
        self._verifiers = [Webhook(s) for s in secrets]
        self.path = path
        self.received: list[Received] = []
        self.elsewhere_hits = 0
        #: requests that arrived (counted before a scripted delay: one in flight counts)
        self.arrived = 0
        #: the webhook-id of each request as it arrived, in order
        self.arrivals: list[str] = []
        self._script: deque[Reply] = deque()
        self._changed = asyncio.Event()
        self._runner: Any = None
        self.url = ""

    def script(self, *replies: Reply | int) -> None:
        """Queue answers for the next requests (an int is a status); 200 once they are used."""
        self._script.extend(r if isinstance(r, Reply) else Reply(r) for r in replies)

    async def __aenter__(self) -> WebhookReceiver:
        from aiohttp import web

        app = web.Application()
        app.router.add_post(self.path, self._handle)
        app.router.add_post("/elsewhere", self._elsewhere)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}{self.path}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    def _verify(self, body: bytes, headers: dict[str, str]) -> str | None:
        from standardwebhooks.webhooks import WebhookVerificationError

        error = "no secret given"
        for verifier in self._verifiers:
            try:
                verifier.verify(body, headers)
            except WebhookVerificationError as exc:
                error = str(exc)
            else:
                return None
        return error

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        self.arrived += 1
        self.arrivals.append(request.headers.get("webhook-id", ""))
        self._changed.set()
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        error = self._verify(body, headers)
        reply = self._script.popleft() if self._script and error is None else Reply()
        if error is not None:
            reply = Reply(400)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        self.received.append(
            Received(
                webhook_id=headers.get("webhook-id", ""),
                timestamp=headers.get("webhook-timestamp", ""),
                signature=headers.get("webhook-signature", ""),
                body=body,
                verified=error is None,
                error=error,
                answered=reply.status,
            )
        )
        self._changed.set()
        extra: dict[str, str] = {}
        if reply.retry_after is not None:
            extra["Retry-After"] = str(reply.retry_after)
        if 300 <= reply.status < 400:
            extra["Location"] = "/elsewhere"
        return web.Response(status=reply.status, headers=extra, text=error or "ok")

    async def _elsewhere(self, request: Any) -> Any:
        from aiohttp import web

        self.elsewhere_hits += 1
        return web.Response(text="followed a redirect")

    # -- what the tests look at ------------------------------------------------------------

    def verified_ids(self) -> set[str]:
        """The webhook-ids accepted (verified and answered 2xx): each processed once."""
        return {r.webhook_id for r in self.received if r.verified and 200 <= r.answered < 300}

    def attempts(self, webhook_id: str) -> list[Received]:
        return [r for r in self.received if r.webhook_id == webhook_id]

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Return once ``condition()`` holds, checked after every request; TimeoutError."""
        async with asyncio.timeout(timeout):
            while not condition():
                self._changed.clear()
                await self._changed.wait()
