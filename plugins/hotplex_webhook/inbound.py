"""Inbound triggers: ``POST /hooks/v1/{name}`` runs the trigger's prompt.

The request is checked before anything runs: the body size (413 past the trigger's
``max_body_bytes``), the signature by the trigger's scheme (401: Standard Webhooks with its
replay window on ``webhook-timestamp``, or GitHub's ``X-Hub-Signature-256``), then the body
must be JSON (400). The prompt is the trigger's jinja2 template rendered in a sandboxed
environment with ``payload`` (the body), ``headers`` and ``trigger`` (422 when it fails).

The prompt then goes through core's chat bridge as a message of the platform ``webhook``
(:class:`WebhookAdapter`) on the trigger's own conversation ``webhook:hooks/<name>``, with
the trigger's unattended policy: the inbound log, the WAF, approvals, audit and storage
apply as to any chat message. Its ``event_id`` is ``<name>:<delivery id>`` (``webhook-id``
or ``X-GitHub-Delivery``), so core's inbound de-duplication runs a redelivered request
once (the second gets 200 with ``duplicate: true``). The answer (the turn's text) is in the
response when the turn ends within ``answer_within``; otherwise the response is 202 with
the run id and the turn goes on. Either way the answer is sent to ``deliver_to``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from aiohttp import web
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hotplex.chat import CHAT_BRIDGE, DELIVERY, HeadlessOperations
from hotplex.context import PluginContext
from hotplex.events import AgentEvent
from hotplex.interfaces import ChatAdapter, MessageOperations
from hotplex.types import IncomingMessage
from hotplex_webhook.config import InboundTrigger
from hotplex_webhook.signing import SignatureError, verify_github, verify_standard

__all__ = ["Inbound", "WebhookAdapter", "read_body", "render_prompt"]

log = logging.getLogger(__name__)

PLATFORM = "webhook"


class WebhookAdapter(ChatAdapter):
    """The ``webhook`` platform for the chat bridge: its messages come from the route."""

    name = "webhook"
    platform = PLATFORM

    def __init__(self) -> None:
        self._operations = HeadlessOperations()

    @property
    def operations(self) -> MessageOperations:
        return self._operations

    async def run(self, deliver: Callable[[IncomingMessage], Awaitable[None]]) -> None:
        await asyncio.Event().wait()  # never started: the route calls the bridge


class BodyTooLarge(Exception):
    pass


async def read_body(request: web.Request, limit: int) -> bytes:
    """The body, at most ``limit`` bytes (BodyTooLarge past it, read no further)."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge
    body = bytearray()
    while chunk := await request.content.read(min(1 << 16, limit + 1 - len(body))):
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge
    return bytes(body)


def render_prompt(template: str, context: Mapping[str, Any]) -> str:
    """The prompt from ``template`` in a sandbox: no attribute tricks, no undefined names."""
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    return env.from_string(template).render(**context).strip()


class Inbound:
    """The triggers of one daemon (service of the plugin, used by the route)."""

    def __init__(
        self,
        ctx: PluginContext,
        triggers: Mapping[str, InboundTrigger],
        *,
        replay_window: float,
        answer_within: float,
    ) -> None:
        self.ctx = ctx
        self.triggers = dict(triggers)
        self.replay_window = replay_window
        self.answer_within = answer_within
        self.adapter = WebhookAdapter()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def aclose(self) -> None:
        from hotplex.aio import cancel_and_wait

        await cancel_and_wait(*self._tasks)

    def verify(self, trigger: InboundTrigger, headers: Mapping[str, str], body: bytes) -> str:
        """The delivery id of a correctly signed request (SignatureError otherwise)."""
        secret = trigger.secret.get_secret_value()
        if trigger.scheme == "github":
            return verify_github(secret, headers, body)
        return verify_standard(secret, headers, body, now=time.time(), tolerance=self.replay_window)

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info.get("name", "")
        trigger = self.triggers.get(name)
        if trigger is None:
            return web.json_response({"error": f"no trigger named {name!r}"}, status=404)
        try:
            body = await read_body(request, trigger.max_body_bytes)
        except BodyTooLarge:
            return web.json_response(
                {"error": f"the body is larger than {trigger.max_body_bytes} bytes"}, status=413
            )
        try:
            delivery_id = self.verify(trigger, request.headers, body)
        except SignatureError as exc:
            log.warning("webhook trigger %s: refused a request: %s", name, exc)
            return web.json_response({"error": "bad signature"}, status=401)
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return web.json_response({"error": "the body is not JSON"}, status=400)
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            prompt = render_prompt(
                trigger.prompt, {"payload": payload, "headers": headers, "trigger": name}
            )
        except TemplateError as exc:
            return web.json_response({"error": f"the prompt template failed: {exc}"}, status=422)
        if not prompt:
            return web.json_response({"error": "the prompt is empty"}, status=422)
        return await self.run(trigger, delivery_id, prompt)

    async def replay(self, message: IncomingMessage) -> None:
        """Run a stored trigger message a crash left unfinished (recorded, its turn never
        accepted) once more; its answer goes to ``deliver_to`` (the runtime's replayer of
        the ``webhook`` platform, called at start-up)."""
        name = message.address.rpartition("/")[2]
        trigger = self.triggers.get(name)
        if trigger is None:
            log.warning(
                "a stored message of the trigger %r, no longer configured, is dropped", name
            )
            return
        bridge = self.ctx.services.get(CHAT_BRIDGE)
        handled = await bridge.handle(
            self.adapter,
            message,
            replay=True,
            render=False,
            facts={"unattended": trigger.policy},
        )
        if handled.turn is not None:
            self._spawn(self._finish(trigger, handled.turn), trigger.name)

    def _spawn(
        self, coro: Coroutine[Any, Any, tuple[str, str]], name: str
    ) -> asyncio.Task[tuple[str, str]]:
        task = asyncio.create_task(coro, name=f"webhook-run:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def run(self, trigger: InboundTrigger, delivery_id: str, prompt: str) -> web.Response:
        bridge = self.ctx.services.get(CHAT_BRIDGE)
        message = IncomingMessage(
            address=f"{PLATFORM}:hooks/{trigger.name}",
            text=prompt,
            user=f"{PLATFORM}:{trigger.name}",
            platform=PLATFORM,
            event_id=f"{trigger.name}:{delivery_id}",
            direct=True,
        )
        handled = await bridge.handle(
            self.adapter, message, render=False, facts={"unattended": trigger.policy}
        )
        if handled.outcome == "duplicate":
            return web.json_response({"duplicate": True, "delivery_id": delivery_id})
        if handled.outcome == "pending":
            return web.json_response({"status": "pending approval"}, status=202)
        if handled.turn is None:
            code = 409 if handled.outcome == "busy" else 403
            return web.json_response(
                {"status": handled.outcome, "error": handled.reply or handled.outcome},
                status=code,
            )
        turn = handled.turn
        task = self._spawn(self._finish(trigger, turn), trigger.name)
        try:
            status, answer = await asyncio.wait_for(asyncio.shield(task), self.answer_within)
        except TimeoutError:
            return web.json_response({"run_id": turn.turn_id, "status": "running"}, status=202)
        return web.json_response({"run_id": turn.turn_id, "status": status, "answer": answer})

    async def _finish(self, trigger: InboundTrigger, turn: Any) -> tuple[str, str]:
        """Wait for the turn's end; deliver its answer to ``deliver_to``."""
        texts: list[str] = []
        status = "error"
        async for event in turn:
            assert isinstance(event, AgentEvent)
            if event.type == "text":
                texts.append(str(event.data.get("text", "")))
            elif event.type == "done":
                status = str(event.data.get("status", "error"))
                break
        answer = "\n\n".join(t for t in texts if t.strip())
        if trigger.deliver_to is not None:
            text = answer or f"(the {trigger.name} webhook's run ended: {status})"
            try:
                await self.ctx.services.get(DELIVERY).send(trigger.deliver_to, text)
            except Exception:
                log.exception(
                    "webhook trigger %s: delivering to %s failed", trigger.name, trigger.deliver_to
                )
        return status, answer
