"""The cron service's key and errors, light to import (the CLI and the chat command
import them before anything starts)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from hotplex.context import ServiceKey
from hotplex.errors import UserFacingError

if TYPE_CHECKING:
    from hotplex_cron.service import CronService

__all__ = ["CRON", "ROUTES", "CronError", "NotFound"]


class CronError(UserFacingError):
    """A request about jobs that cannot be done (its message is shown as is)."""


class NotFound(CronError):
    """No job of that name."""


#: The running cron service (set by the plugin's start-up resource).
CRON = cast("ServiceKey[CronService]", ServiceKey("cron", object))

_JOBS = "/admin/v1/cron/jobs"
_ONE = _JOBS + "/{name}"
#: The admin routes: handler name -> (method, path); handlers in hotplex_cron.routes.
ROUTES = {
    "list": ("GET", _JOBS),
    "add": ("POST", _JOBS),
    "show": ("GET", _ONE),
    "edit": ("PATCH", _ONE),
    "remove": ("DELETE", _ONE),
    "pause": ("POST", _ONE + "/pause"),
    "resume": ("POST", _ONE + "/resume"),
    "run": ("POST", _ONE + "/run"),
    "runs": ("GET", _ONE + "/runs"),
}
