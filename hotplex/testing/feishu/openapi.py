"""The Open API routes (``/open-apis/...``): each request is authenticated with a live
tenant token, may be failed on purpose (``fail_next``), and is recorded as a
:class:`~hotplex.testing.feishu.models.Call`."""

from __future__ import annotations

import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from hotplex.testing.feishu import limits as codes
from hotplex.testing.feishu.cardkit import CardKit
from hotplex.testing.feishu.limits import FeishuError
from hotplex.testing.feishu.models import Call
from hotplex.testing.feishu.store import Store

__all__ = ["OpenApi"]

JSON = dict[str, Any]
Handler = Callable[[web.Request, Any], Any]
Endpoint = Callable[[web.Request], Awaitable[web.StreamResponse]]
_CARD = "/open-apis/cardkit/v1/cards/{card_id}"
_ELEMENT = _CARD + "/elements/{element_id}"
_MESSAGE = "/open-apis/im/v1/messages/{message_id}"


@dataclass
class _Failure:
    target: str
    code: int
    msg: str
    status: int | None
    remaining: int
    reset: float = 1.0


class OpenApi:
    """The routes over a :class:`Store` and a :class:`CardKit`."""

    def __init__(
        self,
        store: Store,
        cardkit: CardKit,
        *,
        lock: threading.RLock,
        on_change: Callable[[], None],
    ) -> None:
        self.store = store
        self._lock = lock
        self.cardkit = cardkit
        self.calls: list[Call] = []
        self._failures: list[_Failure] = []
        self._on_change = on_change

    def add_routes(self, app: web.Application) -> None:
        add = app.router.add_route
        add(
            "POST",
            "/open-apis/auth/v3/tenant_access_token/internal",
            self._wrap("tenant_access_token.internal", self._token, auth=False),
        )
        add("GET", "/open-apis/bot/v3/info", self._wrap("bot.info", self._bot_info))
        add("POST", "/open-apis/im/v1/messages", self._wrap("message.create", self._send))
        add("POST", _MESSAGE + "/reply", self._wrap("message.reply", self._reply))
        add("PATCH", _MESSAGE, self._wrap("message.patch", self._patch))
        add("PUT", _MESSAGE, self._wrap("message.update", self._edit))
        add("DELETE", _MESSAGE, self._wrap("message.delete", self._recall))
        add(
            "GET", _MESSAGE + "/resources/{key}", self._wrap("message_resource.get", self._download)
        )
        add(
            "POST",
            "/open-apis/interactive/v1/card/update",
            self._wrap("card.delayed_update", self._delayed_update),
        )
        add("POST", "/open-apis/ephemeral/v1/send", self._wrap("ephemeral.send", self._ephemeral))
        add("POST", "/open-apis/ephemeral/v1/delete", self._wrap("ephemeral.delete", self._unsend))
        add("POST", "/open-apis/im/v1/images", self._wrap("image.create", self._upload_image))
        add("POST", "/open-apis/im/v1/files", self._wrap("file.create", self._upload_file))
        add("POST", "/open-apis/cardkit/v1/cards", self._wrap("card.create", self._card_create))
        add("PUT", _CARD, self._wrap("card.update", self._card_update))
        add("PATCH", _CARD + "/settings", self._wrap("card.settings", self._card_settings))
        add("POST", _CARD + "/elements", self._wrap("card_element.create", self._element_create))
        add("PUT", _ELEMENT, self._wrap("card_element.update", self._element_update))
        add("PATCH", _ELEMENT, self._wrap("card_element.patch", self._element_patch))
        add("DELETE", _ELEMENT, self._wrap("card_element.delete", self._element_delete))
        add("PUT", _ELEMENT + "/content", self._wrap("card_element.content", self._element_content))
        add("*", "/open-apis/{tail:.*}", self._not_found)

    def fail_next(
        self, target: str, code: int, msg: str, status: int | None, times: int, reset: float = 1.0
    ) -> None:
        with self._lock:
            self._failures.append(_Failure(target, code, msg, status, times, reset))

    def injected(self, name: str, path: str) -> FeishuError | None:
        for failure in self._failures:
            if failure.target in (name, path) and failure.remaining > 0:
                failure.remaining -= 1
                if not failure.remaining:
                    self._failures.remove(failure)
                return FeishuError(
                    failure.code, failure.msg, status=failure.status, reset=failure.reset
                )
        return None

    def _wrap(self, name: str, handler: Handler, *, auth: bool = True) -> Endpoint:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            body: Any = None
            response: web.StreamResponse
            code = 0
            try:
                body = await _read_body(request)
                with self._lock:
                    error = self.injected(name, request.path)
                    if error is not None:
                        raise error
                    if auth:
                        self.store.check_token(request.headers.get("Authorization"))
                    result = handler(request, body)
                if isinstance(result, web.StreamResponse):
                    response = result
                elif name in ("tenant_access_token.internal", "bot.info"):
                    response = web.json_response(result)
                else:
                    response = web.json_response({"code": 0, "msg": "success", "data": result})
            except FeishuError as error:
                code = error.code
                response = _error_response(error)
            with self._lock:
                self.calls.append(
                    Call(
                        name,
                        request.method,
                        request.path,
                        dict(request.query),
                        _recordable(body),
                        self.store.clock(),
                        response.status,
                        code,
                    )
                )
            self._on_change()
            return response

        return endpoint

    async def _not_found(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"code": 404, "msg": f"404 page not found: {request.path}"}, status=404
        )

    # --- handlers -------------------------------------------------------------------------

    def _token(self, request: web.Request, body: Any) -> JSON:
        return self.store.issue_token(_object(body))

    def _bot_info(self, request: web.Request, body: Any) -> JSON:
        # answered at the top level (``bot``), not in ``data``, as Feishu does
        user = self.store.users[self.store.bot_open_id]
        bot = {"open_id": user.open_id, "app_name": user.name, "activate_status": 2}
        return {"code": 0, "msg": "ok", "bot": bot}

    def _delayed_update(self, request: web.Request, body: Any) -> JSON:
        return self.store.delayed_update(_object(body))

    def _ephemeral(self, request: web.Request, body: Any) -> JSON:
        return self.store.ephemeral(_object(body))

    def _unsend(self, request: web.Request, body: Any) -> JSON:
        return self.store.delete_ephemeral(_object(body))

    def _send(self, request: web.Request, body: Any) -> JSON:
        return self.store.send(request.query.get("receive_id_type", ""), _object(body))

    def _reply(self, request: web.Request, body: Any) -> JSON:
        return self.store.reply(request.match_info["message_id"], _object(body))

    def _patch(self, request: web.Request, body: Any) -> JSON:
        return self.store.patch(request.match_info["message_id"], _object(body))

    def _edit(self, request: web.Request, body: Any) -> JSON:
        return self.store.edit(request.match_info["message_id"], _object(body))

    def _recall(self, request: web.Request, body: Any) -> JSON:
        return self.store.recall(request.match_info["message_id"])

    def _download(self, request: web.Request, body: Any) -> web.Response:
        resource = self.store.download(
            request.match_info["message_id"], request.match_info["key"], request.query.get("type")
        )
        content_type = "image/png" if resource.kind == "image" else "application/octet-stream"
        return web.Response(
            body=resource.data,
            content_type=content_type,
            headers={"Content-Disposition": f'attachment; filename="{resource.file_name}"'},
        )

    def _upload_image(self, request: web.Request, body: Any) -> JSON:
        form = _object(body)
        if form.get("image_type") not in ("message", "avatar"):
            raise FeishuError(codes.RESOURCE_INVALID, "image_type must be message or avatar")
        data, name = _upload(form, "image")
        return {"image_key": self.store.upload("image", data, name).key}

    def _upload_file(self, request: web.Request, body: Any) -> JSON:
        form = _object(body)
        if not form.get("file_type") or not form.get("file_name"):
            raise FeishuError(codes.RESOURCE_INVALID, "file_type and file_name are required")
        data, _ = _upload(form, "file")
        return {"file_key": self.store.upload("file", data, str(form["file_name"])).key}

    def _card_create(self, request: web.Request, body: Any) -> JSON:
        return self.cardkit.create(_object(body))

    def _card_update(self, request: web.Request, body: Any) -> JSON:
        return self.cardkit.update(request.match_info["card_id"], _object(body))

    def _card_settings(self, request: web.Request, body: Any) -> JSON:
        return self.cardkit.settings(request.match_info["card_id"], _object(body))

    def _element_create(self, request: web.Request, body: Any) -> JSON:
        return self.cardkit.add_elements(request.match_info["card_id"], _object(body))

    def _element_update(self, request: web.Request, body: Any) -> JSON:
        info = request.match_info
        return self.cardkit.replace_element(info["card_id"], info["element_id"], _object(body))

    def _element_patch(self, request: web.Request, body: Any) -> JSON:
        info = request.match_info
        return self.cardkit.patch_element(info["card_id"], info["element_id"], _object(body))

    def _element_delete(self, request: web.Request, body: Any) -> JSON:
        info = request.match_info
        return self.cardkit.delete_element(info["card_id"], info["element_id"], _object(body))

    def _element_content(self, request: web.Request, body: Any) -> JSON:
        info = request.match_info
        return self.cardkit.content(info["card_id"], info["element_id"], _object(body))


async def _read_body(request: web.Request) -> Any:
    """JSON whatever the Content-Type says (the SDK's token fetch sends none); multipart
    form fields as a dict, files as ``(filename, bytes)``."""
    if request.content_type.startswith("multipart/"):
        form: JSON = {}
        async for part in await request.multipart():
            if not isinstance(part, BodyPartReader):
                continue
            data = await part.read()
            name = part.name or ""
            form[name] = (
                (part.filename, bytes(data)) if part.filename else bytes(data).decode("utf-8")
            )
        return form
    raw = await request.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as error:
        raise FeishuError(codes.INVALID_PARAM, "the body is not JSON") from error


def _object(body: Any) -> JSON:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise FeishuError(codes.INVALID_PARAM, "the body must be a JSON object")
    return body


def _upload(form: JSON, field: str) -> tuple[bytes, str]:
    value = form.get(field)
    if isinstance(value, tuple):
        return value[1], str(value[0])
    if isinstance(value, str):  # a part without a filename
        return value.encode("utf-8"), field
    raise FeishuError(codes.RESOURCE_INVALID, f"the {field} part is missing")


def _recordable(body: Any) -> Any:
    if isinstance(body, dict):
        return {
            k: {"filename": v[0], "size": len(v[1])} if isinstance(v, tuple) else v
            for k, v in body.items()
        }
    return body


def _error_response(error: FeishuError) -> web.Response:
    headers = {}
    if error.code == codes.RATE_LIMITED:
        headers = {"x-ogw-ratelimit-limit": "50", "x-ogw-ratelimit-reset": f"{error.reset:g}"}
    return web.json_response(
        {"code": error.code, "msg": error.msg, "data": {}}, status=error.status, headers=headers
    )
