"""The Web API front door: ``/api/<method>`` plus the file, upload and response-URL routes.

For every call: arguments are merged from the query string, a form body and a JSON body;
``Authorization: Bearer`` is required (``not_authed``), the token must be the bot token
(``invalid_auth``; the app token gets ``not_allowed_token_type``) except for
``apps.connections.open``, which wants the app token; a method whose scope was not granted
answers ``missing_scope``; then scripted failures, then the rate limiter (HTTP 429 +
``Retry-After``), then the method. Errors are HTTP 200 ``{"ok": false, "error": ...}``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType

from aiohttp import web

from hotplex.testing.slack.limits import ApiError
from hotplex.testing.slack.rate import RateLimiter
from hotplex.testing.slack.records import JSON, Call
from hotplex.testing.slack.state import SlackState
from hotplex.testing.slack.web_chat import CHAT_METHODS
from hotplex.testing.slack.web_other import OTHER_METHODS

Handler = Callable[[SlackState, JSON], JSON]

log = logging.getLogger(__name__)

#: The scope each method needs (methods not listed need none beyond a valid token).
METHOD_SCOPES = MappingProxyType(
    {
        "chat.postMessage": "chat:write",
        "chat.update": "chat:write",
        "chat.delete": "chat:write",
        "chat.postEphemeral": "chat:write",
        "chat.startStream": "chat:write",
        "chat.appendStream": "chat:write",
        "chat.stopStream": "chat:write",
        "assistant.threads.setStatus": "chat:write",
        "assistant.threads.setSuggestedPrompts": "assistant:write",
        "assistant.threads.setTitle": "assistant:write",
        "files.info": "files:read",
        "files.getUploadURLExternal": "files:write",
        "files.completeUploadExternal": "files:write",
        "conversations.info": "channels:read",
        "conversations.open": "im:write",
        "users.info": "users:read",
        "reactions.add": "reactions:write",
        "reactions.remove": "reactions:write",
    }
)

LOGIN_PAGE = (
    "<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to Slack</body></html>"
)


async def request_args(request: web.Request) -> JSON:
    """Arguments from the query string, then a form or JSON body (later sources win)."""
    args: JSON = dict(request.query)
    if not request.can_read_body:
        return args
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise ApiError("invalid_json") from None
        if not isinstance(body, dict):
            raise ApiError("invalid_json")
        args.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        args.update({key: value for key, value in form.items() if isinstance(value, str)})
    return {key: value for key, value in args.items() if value is not None}


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else None


class WebApi:
    """Serves the Web API for one fake workspace; ``open_connection`` mints a Socket Mode URL."""

    def __init__(
        self,
        state: SlackState,
        limiter: RateLimiter,
        *,
        bot_token: str,
        app_token: str,
        open_connection: Callable[[], str],
    ) -> None:
        self.state = state
        self.limiter = limiter
        self.bot_token = bot_token
        self.app_token = app_token
        self._open_connection = open_connection
        self.methods: Mapping[str, Handler] = {
            **CHAT_METHODS,
            **OTHER_METHODS,
            "auth.test": self._auth_test,
            "apps.connections.open": self._connections_open,
        }

    def routes(self) -> list[web.RouteDef]:
        return [
            web.route("*", "/api/{method}", self.handle),
            web.post("/upload/v1/{file_id}", self.upload),
            web.get("/files/{file_id}/download/{name}", self.download),
            web.get("/files/{file_id}/{name}", self.download),
        ]

    def _auth_test(self, state: SlackState, args: JSON) -> JSON:
        return {
            "url": f"{state.settings.public_url}/",
            "team": "HotPlex Test",
            "user": "hotplex",
            "team_id": state.team_id,
            "user_id": state.bot_user_id,
            "bot_id": state.bot_id,
            "is_enterprise_install": False,
        }

    def _connections_open(self, state: SlackState, args: JSON) -> JSON:
        return {"url": self._open_connection()}

    def _authorize(self, method: str, token: str | None) -> None:
        if token is None:
            raise ApiError("not_authed")
        wanted = self.app_token if method == "apps.connections.open" else self.bot_token
        if token == wanted:
            scope = METHOD_SCOPES.get(method)
            if scope is not None and scope not in self.state.settings.scopes:
                raise ApiError(
                    "missing_scope", needed=scope, provided=",".join(self.state.settings.scopes)
                )
            return
        if token in (self.app_token, self.bot_token):
            raise ApiError("not_allowed_token_type")
        raise ApiError("invalid_auth")

    def _respond(
        self, call: Call, body: JSON, *, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        call.outcome = "ok" if body.get("ok") else str(body.get("error"))
        call.status = status
        self.state.calls.append(call)
        self.state.changed()
        all_headers = {"X-OAuth-Scopes": ",".join(self.state.settings.scopes), **(headers or {})}
        return web.json_response(body, status=status, headers=all_headers)

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        token = bearer(request)
        call = Call(method, {}, time.monotonic(), token=token)
        try:
            call.args = await request_args(request)
            if self.state.settings.outage:
                body = {"ok": False, "error": "service_unavailable"}
                return self._respond(call, body, status=503)
            handler = self.methods.get(method)
            if handler is None:
                raise ApiError("unknown_method")
            self._authorize(method, token)
            failure = self.limiter.scripted(method)
            if failure is not None:
                if failure.status == 429:
                    return self._ratelimited(call, failure.retry_after)
                if failure.status != 200:
                    return self._respond(
                        call, {"ok": False, "error": failure.error}, status=failure.status
                    )
                raise ApiError(failure.error)
            channel = call.args.get("channel") or call.args.get("channel_id")
            retry_after = self.limiter.check(method, channel if isinstance(channel, str) else None)
            if retry_after is not None:
                return self._ratelimited(call, retry_after)
            result = handler(self.state, call.args)
        except ApiError as error:
            return self._respond(call, {"ok": False, "error": error.code, **error.extra})
        except Exception as error:  # a request the fake does not understand: Slack's 500
            log.exception("fake Slack: %s failed", method)
            body = {"ok": False, "error": "fatal_error", "detail": type(error).__name__}
            return self._respond(call, body, status=500)
        return self._respond(call, {"ok": True, **result})

    def _ratelimited(self, call: Call, retry_after: float) -> web.Response:
        seconds = str(max(0, round(retry_after)))
        return self._respond(
            call,
            {"ok": False, "error": "ratelimited"},
            status=429,
            headers={"Retry-After": seconds},
        )

    async def upload(self, request: web.Request) -> web.Response:
        """The upload URL of ``files.getUploadURLExternal``: the raw bytes, no token needed."""
        record = self.state.files.get(request.match_info["file_id"])
        if self.state.settings.outage:
            return web.Response(status=503, text="service unavailable", content_type="text/plain")
        if record is None or record.completed:
            return web.Response(status=404, text="not found", content_type="text/plain")
        if request.content_type == "multipart/form-data":
            form = await request.post()
            fields = [v for v in form.values() if isinstance(v, web.FileField)]
            if not fields:
                return web.Response(status=400, text="no file", content_type="text/plain")
            data = fields[0].file.read()
        else:
            data = await request.read()
        record.content = data
        self.state.changed()
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    async def download(self, request: web.Request) -> web.Response:
        """``url_private(_download)``: the bytes with the bot token, Slack's login page without."""
        record = self.state.files.get(request.match_info["file_id"])
        if self.state.settings.outage:
            return web.Response(status=503, text="service unavailable", content_type="text/plain")
        if bearer(request) != self.bot_token:
            return web.Response(text=LOGIN_PAGE, content_type="text/html")
        if record is None or record.content is None:
            return web.Response(status=404, text="file not found", content_type="text/plain")
        return web.Response(body=record.content, content_type=record.mimetype)
