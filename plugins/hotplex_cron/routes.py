"""``/admin/v1/cron/...``: the jobs and their runs, for ``hotplex cron`` and the dashboard
(admin token; errors as ``{"error": {"code", "message"}}`` like the rest of the admin API)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from hotplex.gateway import RUNTIME_KEY
from hotplex_cron.keys import CRON, CronError, NotFound
from hotplex_cron.service import CronService

__all__ = ["HANDLERS"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _service(request: web.Request) -> CronService | None:
    return request.app[RUNTIME_KEY].ctx.services.find(CRON)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CronError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise CronError("the body must be a JSON object")
    return body


def _guarded(
    call: Callable[[web.Request, CronService], Awaitable[Any]], status: int = 200
) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        service = _service(request)
        if service is None:
            return _error(503, "unavailable", "cron is not running on this daemon")
        try:
            result = await call(request, service)
        except NotFound as exc:
            return _error(404, "unknown_job", str(exc))
        except CronError as exc:
            return _error(400, "invalid_job", str(exc))
        return web.json_response(result, status=status)

    return handler


def _name(request: web.Request) -> str:
    return request.match_info["name"]


async def _list(request: web.Request, service: CronService) -> Any:
    return {"jobs": await service.list_jobs(), "scheduler": service.status()}


async def _add(request: web.Request, service: CronService) -> Any:
    source = request.query.get("source", "admin")  # ``hotplex cron add`` says cli
    if source not in ("admin", "cli"):
        raise CronError("source: admin or cli")
    return {"job": await service.add(await _body(request), source=source, created_by="admin")}


async def _show(request: web.Request, service: CronService) -> Any:
    return {"job": await service.describe(_name(request))}


async def _edit(request: web.Request, service: CronService) -> Any:
    return {"job": await service.edit(_name(request), await _body(request))}


async def _remove(request: web.Request, service: CronService) -> Any:
    await service.remove(_name(request))
    return {"removed": _name(request)}


async def _pause(request: web.Request, service: CronService) -> Any:
    return {"job": await service.pause(_name(request))}


async def _resume(request: web.Request, service: CronService) -> Any:
    return {"job": await service.resume(_name(request))}


async def _run(request: web.Request, service: CronService) -> Any:
    return await service.run_now(_name(request))


async def _runs(request: web.Request, service: CronService) -> Any:
    text = request.query.get("limit", "20")
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise CronError("limit: a number from 1 to 1000")
    return {"runs": await service.history(_name(request), limit=int(text))}


#: The handlers of :data:`hotplex_cron.keys.ROUTES`, by name.
HANDLERS: dict[str, Handler] = {
    "list": _guarded(_list),
    "add": _guarded(_add, 201),
    "show": _guarded(_show),
    "edit": _guarded(_edit),
    "remove": _guarded(_remove),
    "pause": _guarded(_pause),
    "resume": _guarded(_resume),
    "run": _guarded(_run, 202),
    "runs": _guarded(_runs),
}
