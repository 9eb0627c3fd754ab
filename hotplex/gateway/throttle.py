"""Failed authentications, throttled per client address (``server.failed_auth``).

Every 401 takes a token from the address's bucket; an address whose bucket is empty gets
429 with Retry-After *before* its key is looked at, so guessing goes no faster with a
different wrong key each time, nor with the right one. The throttle lives on the
application (:data:`FAILED_AUTH`) and every authenticating guard consults it: client
routes, the admin API, ``/metrics`` and plugin routes.

The address is the peer's (``request.remote``): behind a reverse proxy every client shares
the proxy's address, and with it this bucket.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import NoReturn

from aiohttp import web

from hotplex.config.server import FailedAuthLimit
from hotplex.gateway.frames import error_frame
from hotplex.gateway.ratelimit import RateLimiter

__all__ = ["FAILED_AUTH", "FailedAuth"]

PATH = "server.failed_auth"
#: Addresses remembered at most; full buckets go first, then the oldest.
MAX_ADDRESSES = 10_000


class FailedAuth:
    def __init__(
        self, limit: FailedAuthLimit, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self._limiter = RateLimiter(
            limit.per_minute, limit.burst, clock=clock, max_names=MAX_ADDRESSES
        )

    @staticmethod
    def _address(request: web.Request) -> str:
        return request.remote or "unknown"

    def check(self, request: web.Request) -> None:
        """Raise 429 if the request's address has failed too often."""
        wait = self._limiter.wait(self._address(request))
        if wait:
            raise self._too_many(wait)

    def failed(self, request: web.Request) -> NoReturn:
        """Count a failed authentication and answer it: a bare 401."""
        self._limiter.take(self._address(request))
        raise web.HTTPUnauthorized()

    def _too_many(self, wait: float) -> web.HTTPTooManyRequests:
        seconds = max(1, math.ceil(wait))
        message = (
            f"Too many failed authentications from this address: {PATH} allows "
            f"{self.limit.burst} in a row, then {self.limit.per_minute} a minute. Retry in "
            f"{seconds} s with a valid key."
        )
        frame = error_frame(
            "rate_limited",
            message,
            retryable=True,
            details={"limit": PATH, "retry_after": seconds},
        )
        return web.HTTPTooManyRequests(
            text=json.dumps(frame),
            content_type="application/json",
            headers={"Retry-After": str(seconds)},
        )


#: The application's throttle; a guard without one (an app built by hand) does not throttle.
FAILED_AUTH = web.AppKey("failed_auth", FailedAuth)


def check(request: web.Request) -> None:
    throttle = request.config_dict.get(FAILED_AUTH)
    if throttle is not None:
        throttle.check(request)


def failed(request: web.Request) -> NoReturn:
    throttle = request.config_dict.get(FAILED_AUTH)
    if throttle is not None:
        throttle.failed(request)
    raise web.HTTPUnauthorized()
