"""One delivery attempt and what its result means for the row.

- 2xx: delivered.
- 410 Gone: the receiver is gone for good: the subscription is disabled.
- 3xx: a failure (never followed: a redirect could point anywhere, private addresses too).
- 429, 5xx, other 4xx, a timeout or a connection error: try again later; ``Retry-After``
  (seconds or an HTTP date) sets the earliest next attempt.
- A receiver on a non-public address (see :mod:`hotplex_webhook.guard`): refused, dead at
  once (retrying cannot make it public).

Delays follow the subscription's ``retry_schedule`` with ±20 % jitter; after its last entry
the row is a dead letter.
"""

from __future__ import annotations

import email.utils
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from yarl import URL

from hotplex.outbox import OutboxRow
from hotplex_webhook.guard import BlockedAddressError, check_host
from hotplex_webhook.signing import standard_headers

__all__ = ["Result", "attempt", "body_of", "next_delay", "retry_after"]

Verdict = Literal["delivered", "retry", "gone", "refused"]

#: Receivers' answers kept in an error message (bytes).
_SNIPPET = 200


@dataclass(frozen=True, slots=True)
class Result:
    verdict: Verdict
    error: str = ""
    status: int | None = None
    retry_after: float | None = None  # seconds from now


def body_of(row: OutboxRow) -> bytes:
    """The request body: the row's payload as compact JSON (``id``, ``kind``, ``type``,
    ``ts`` and the item's fields)."""
    return json.dumps(row.payload, separators=(",", ":"), ensure_ascii=False).encode()


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def next_delay(
    schedule: Sequence[float], attempts: int, *, rng: random.Random | None = None
) -> float | None:
    """The delay before the next attempt after ``attempts`` failed ones (None: give up)."""
    if attempts > len(schedule):
        return None
    base = schedule[attempts - 1]
    return base * (rng or random).uniform(0.8, 1.2)


def _blocked(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, BlockedAddressError):
            return True
        seen = seen.__cause__ or seen.__context__ or getattr(seen, "os_error", None)
    return False


async def attempt(
    http: aiohttp.ClientSession,
    url: str,
    row: OutboxRow,
    secrets: Sequence[str],
    *,
    timeout: float,
    allow_private: bool,
) -> Result:
    """POST the row to ``url``, signed; what became of it (never raises for the network)."""
    body = body_of(row)
    headers: dict[str, Any] = {
        "content-type": "application/json",
        "user-agent": "hotplex-webhooks",
        **standard_headers(secrets, row.event_id, int(time.time()), body),
    }
    try:
        check_host(URL(url).host or "", allow_private=allow_private)
        async with http.post(
            url,
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            text = (await response.content.read(_SNIPPET)).decode(errors="replace")
            status = response.status
            wait = retry_after(response.headers.get("Retry-After"), time.time())
    except TimeoutError:
        return Result("retry", f"no answer within {timeout:g}s")
    except (aiohttp.ClientError, OSError) as exc:
        if _blocked(exc):
            return Result("refused", f"refused: {url} is not on a public address")
        return Result("retry", f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # a receiver must never stop the worker: count it as a failure
        return Result("retry", f"{type(exc).__name__}: {exc}")
    if 200 <= status < 300:
        return Result("delivered", status=status)
    if status == 410:
        return Result("gone", f"HTTP 410 Gone: {text}".strip(), status=status)
    error = f"HTTP {status}" + (f": {text}" if text else "")
    if 300 <= status < 400:
        error += " (redirects are not followed)"
    return Result("retry", error, status=status, retry_after=wait)
