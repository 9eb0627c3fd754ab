"""The OpenCode-compatible HTTP/SSE routes, under ``/opencode``.

Point the official ``@opencode-ai/sdk`` client at ``http://host:port/opencode``; it
authenticates with HotPlex's API keys as OpenCode's own server password is sent (HTTP Basic,
any user name, the key as password), or as ``Authorization: Bearer``/``X-API-Key``. Errors
are OpenCode's shape ``{"name", "data": {"message"}}``. Every route passes the gateway's
guard (Host, Origin, key, rate limit) and its body limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from hotplex import __version__
from hotplex.gateway.api import read_body
from hotplex.gateway.clients import CALLER
from hotplex.gateway.frames import DecisionRequest, GatewayError, dumps
from hotplex.gateway.opencode.hub import CompatSession, Hub, Listener
from hotplex.gateway.opencode.translate import oc_event
from hotplex.gateway.security import guard

__all__ = ["HUB_KEY", "PREFIX", "add_opencode_routes"]

log = logging.getLogger(__name__)

PREFIX = "/opencode"
HUB_KEY = web.AppKey("opencode_hub", Hub)

JSON = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: OpenCode's names for our error codes.
ERROR_NAMES = {
    "unknown_session": "NotFoundError",
    "unknown_permission": "NotFoundError",
    "not_found": "NotFoundError",
}
#: OpenCode's permission replies as HotPlex decisions.
REPLIES = {
    "once": ("allow", "once"),
    "always": ("allow", "session"),
    "reject": ("deny", "once"),
}


def oc_error(error: GatewayError) -> web.Response:
    name = ERROR_NAMES.get(error.code, "BadRequestError" if error.status == 400 else "Error")
    body = {"name": name, "data": {"message": error.message, "code": error.code}}
    headers = {"Retry-After": "1"} if error.status == 429 else {}
    return web.json_response(body, status=error.status, headers=headers)


def invalid(message: str) -> GatewayError:
    return GatewayError("invalid_request", message)


def prompt_text(body: JSON) -> str:
    """The prompt of a ``POST .../message`` body: its text parts, joined. What HotPlex
    cannot honour is refused rather than ignored."""
    parts = body.get("parts")
    if not isinstance(parts, list) or not parts:
        raise invalid("'parts' is required: a non-empty list of text parts.")
    texts: list[str] = []
    for part in parts:
        if not isinstance(part, dict) or part.get("type") != "text":
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise invalid(f"Only text parts are supported, not {kind!r}.")
        text = part.get("text")
        if not isinstance(text, str):
            raise invalid("A text part needs a string 'text'.")
        if not part.get("ignored"):
            texts.append(text)
    prompt = "\n".join(texts)
    if not prompt.strip():
        raise invalid("The prompt is empty.")
    if body.get("noReply"):
        raise invalid("'noReply' is not supported: every prompt runs a turn.")
    if body.get("system"):
        raise invalid("'system' is not supported per prompt; set provider.append_system_prompt.")
    tools = body.get("tools")
    if isinstance(tools, dict) and any(value is False for value in tools.values()):
        raise invalid(
            "Turning tools off per prompt is not supported; set provider.disallowed_tools."
        )
    return prompt


class Routes:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.gateway = hub.gateway

    async def _session(self, request: web.Request) -> CompatSession:
        return await self.hub.find(request[CALLER], request.match_info["id"])

    async def _body(self, request: web.Request) -> JSON:
        return await read_body(request, self.gateway.settings.max_body_bytes)

    # -- sessions ----------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"healthy": True, "version": __version__})

    async def config(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"model": f"hotplex/{self.hub.model}"})

    async def list_sessions(self, request: web.Request) -> web.StreamResponse:
        return web.json_response([s.info() for s in self.hub.owned(request[CALLER])])

    async def create_session(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        title = body.get("title")
        if title is not None and (not isinstance(title, str) or len(title) > 512):
            raise invalid("'title' must be a string of at most 512 characters.")
        if body.get("parentID"):
            raise invalid("'parentID' (child sessions) is not supported.")
        return web.json_response(self.hub.create(request[CALLER], title).info())

    async def get_session(self, request: web.Request) -> web.StreamResponse:
        return web.json_response((await self._session(request)).info())

    async def update_session(self, request: web.Request) -> web.StreamResponse:
        session = await self._session(request)
        title = (await self._body(request)).get("title")
        if title is not None:
            if not isinstance(title, str) or not 0 < len(title) <= 512:
                raise invalid("'title' must be a string of 1 to 512 characters.")
            session.title = title
            self.hub.broadcast(
                session.owner, [oc_event("session.updated", {"info": session.info()})]
            )
        return web.json_response(session.info())

    async def delete_session(self, request: web.Request) -> web.StreamResponse:
        session = await self._session(request)
        target = self.hub.target(session)
        await self.gateway.engine().stop_session(target.session_id, by=request[CALLER].name)
        self.hub.forget(session)
        return web.json_response(True)

    async def session_status(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.hub.status(request[CALLER]))

    # -- turns -------------------------------------------------------------------------

    async def prompt(self, request: web.Request) -> web.StreamResponse:
        session = await self._session(request)
        text = prompt_text(await self._body(request))
        task = await self.hub.prompt(request[CALLER], session, text)
        # shielded: a client that goes away stops waiting, not the relay or the turn
        return web.json_response(await asyncio.shield(task))

    async def prompt_async(self, request: web.Request) -> web.StreamResponse:
        session = await self._session(request)
        text = prompt_text(await self._body(request))
        await self.hub.prompt(request[CALLER], session, text)
        return web.Response(status=204)

    async def messages(self, request: web.Request) -> web.StreamResponse:
        session = await self._session(request)
        limit = request.query.get("limit")
        messages = session.messages
        if limit is not None:
            if not limit.isdigit():
                raise invalid("'limit' must be a positive integer.")
            messages = messages[-int(limit) :] if int(limit) else []
        return web.json_response(messages)

    async def abort(self, request: web.Request) -> web.StreamResponse:
        session = await self._session(request)
        target = self.hub.target(session)
        if target.session is None:
            return web.json_response(False)
        return web.json_response(await self.gateway.engine().interrupt(target.session_id))

    # -- permissions -------------------------------------------------------------------

    async def _decide(self, request: web.Request, permission_id: str, reply: Any) -> None:
        if reply not in REPLIES:
            raise invalid('The reply must be "once", "always" or "reject".')
        decision, scope = REPLIES[reply]
        body: JSON = {"decision": decision, "scope": scope}
        await self.gateway.decide(request[CALLER], permission_id, DecisionRequest.parse(body))

    async def legacy_permission(self, request: web.Request) -> web.StreamResponse:
        session = await self._session(request)
        permission_id = request.match_info["permission_id"]
        pending = self.gateway.engine().approvals.get(permission_id)
        target = self.hub.target(session)
        if pending is not None and pending.session_id != target.session_id:
            raise GatewayError(
                "unknown_permission",
                f"No permission request {permission_id!r} in this session.",
                status=404,
            )
        body = await self._body(request)
        await self._decide(request, permission_id, body.get("response"))
        return web.json_response(True)

    async def reply_permission(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        await self._decide(request, request.match_info["permission_id"], body.get("reply"))
        return web.json_response(True)

    async def list_permissions(self, request: web.Request) -> web.StreamResponse:
        caller = request[CALLER]
        engine = self.gateway.engine()
        by_engine_id = {self.hub.target(s).session_id: s for s in self.hub.owned(caller)}
        found = []
        for pending in engine.approvals.pending():
            session = by_engine_id.get(pending.session_id)
            if session is not None:
                found.append(
                    {
                        "id": pending.permission_id,
                        "sessionID": session.id,
                        "permission": pending.tool,
                        "patterns": [],
                        "metadata": {"input": dict(pending.input)},
                        "always": [],
                    }
                )
        return web.json_response(found)

    # -- events ------------------------------------------------------------------------

    async def events(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, wrap=None)

    async def global_events(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, wrap=self.hub.directory)

    async def _stream(self, request: web.Request, *, wrap: str | None) -> web.StreamResponse:
        resume = request.headers.get("Last-Event-ID", "").strip()
        if resume and not resume.isdigit():
            raise invalid("Last-Event-ID must be the id of an event this stream sent.")
        caller = request[CALLER]
        listener, mark = self.hub.listen(caller, wrap=wrap)
        replay = self.hub.replay(caller, int(resume), mark) if resume else []
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )

        def frame(event: JSON, number: int | None = None) -> bytes:
            if wrap is not None:
                event = {"directory": wrap, "project": "global", "payload": event}
            head = f"id: {number}\n" if number is not None else ""
            return f"{head}data: {dumps(event)}\n\n".encode()

        forget = self.gateway.track(self._closer(listener))
        heartbeat = self.gateway.settings.sse_heartbeat
        try:
            await response.prepare(request)
            await response.write(frame(oc_event("server.connected", {})))
            for number, _, event in replay:
                await response.write(frame(event, number))
            while True:
                try:
                    item = await asyncio.wait_for(listener.queue.get(), heartbeat)
                except TimeoutError:
                    await response.write(frame(oc_event("server.heartbeat", {})))
                    continue
                if item is None:
                    break
                number, _, event = item
                if number > mark:
                    await response.write(frame(event, number))
            await response.write_eof()
        except ConnectionError:
            pass
        finally:
            forget()
            self.hub.unlisten(listener)
        return response

    @staticmethod
    def _closer(listener: Listener) -> Callable[[], Awaitable[None]]:
        async def close() -> None:
            listener.offer(None)

        return close


def _oc(handler: Handler) -> Handler:
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except GatewayError as error:
            return oc_error(error)

    return answer


async def not_found(request: web.Request) -> web.StreamResponse:
    return oc_error(
        GatewayError(
            "not_found",
            f"{request.method} {request.path} is not part of HotPlex's OpenCode-compatible API.",
            status=404,
        )
    )


def add_opencode_routes(app: web.Application, hub: Hub) -> None:
    app[HUB_KEY] = hub
    routes = Routes(hub)
    gateway = hub.gateway
    table: list[tuple[str, str, Handler]] = [
        ("GET", "/global/health", routes.health),
        ("GET", "/config", routes.config),
        ("GET", "/event", routes.events),
        ("GET", "/global/event", routes.global_events),
        ("GET", "/session", routes.list_sessions),
        ("POST", "/session", routes.create_session),
        ("GET", "/session/status", routes.session_status),
        ("GET", "/session/{id}", routes.get_session),
        ("PATCH", "/session/{id}", routes.update_session),
        ("DELETE", "/session/{id}", routes.delete_session),
        ("GET", "/session/{id}/message", routes.messages),
        ("POST", "/session/{id}/message", routes.prompt),
        ("POST", "/session/{id}/prompt_async", routes.prompt_async),
        ("POST", "/session/{id}/abort", routes.abort),
        ("POST", "/session/{id}/permissions/{permission_id}", routes.legacy_permission),
        ("GET", "/permission", routes.list_permissions),
        ("POST", "/permission/{permission_id}/reply", routes.reply_permission),
    ]
    for method, path, handler in table:
        app.router.add_route(method, PREFIX + path, guard(gateway, _oc(handler)))
    app.router.add_route("*", PREFIX + "/{tail:.*}", guard(gateway, not_found))

    async def close_hub(app: web.Application) -> None:
        await hub.aclose()

    app.on_shutdown.append(close_hub)
