"""Calling the Slack Web API: one client for every call, errors in core's terms.

The client (slack-sdk's ``AsyncWebClient``) points at ``api_base_url``, times out every call
and waits out a 429 once itself (``Retry-After``, slack-sdk's rate-limit retry handler); a
429 that persists is raised as core's :class:`~hotplex.errors.RateLimitedError` with the
``retry_after`` Slack asked for, which the renderer and the delivery router wait out.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from hotplex.errors import RateLimitedError

__all__ = [
    "STOPPED_BY_USER",
    "STREAM_CLOSED",
    "STREAM_REFUSED",
    "call",
    "error_code",
    "make_client",
]

#: Answers meaning this workspace or conversation takes no native streams (use
#: chat.postMessage and chat.update instead).
STREAM_REFUSED = frozenset(
    {
        "unknown_method",
        "not_allowed",
        "not_allowed_token_type",
        "missing_scope",
        "channel_type_not_supported",
        "invalid_arguments",
        "messages_tab_disabled",
        "missing_recipient_team_id",
        "missing_recipient_user_id",
        "feature_not_enabled",
        "method_not_supported_for_channel_type",
        "http_404",
    }
)
#: Answers meaning a stream ended on Slack's side (its lifetime): it goes on as an
#: ordinary message.
STREAM_CLOSED = frozenset({"message_not_in_streaming_state", "not_in_streaming_state"})
#: The answer to a write into a stream the user stopped with its stop button.
STOPPED_BY_USER = "stopped_by_user"


def make_client(token: str, *, base_url: str | None, timeout: float) -> Any:
    """An ``AsyncWebClient`` for ``token`` at ``base_url`` (default Slack's)."""
    from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
    from slack_sdk.web.async_client import AsyncWebClient

    kwargs: dict[str, Any] = {"token": token, "timeout": int(max(1, round(timeout)))}
    if base_url:
        kwargs["base_url"] = base_url if base_url.endswith("/") else base_url + "/"
    client = AsyncWebClient(**kwargs)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    return client


def error_code(exc: BaseException) -> str | None:
    """Slack's error code of a failed call (``ratelimited``, ``unknown_method``, ...), or
    ``http_<status>`` for an answer without one; None for anything else."""
    from slack_sdk.errors import SlackApiError

    if not isinstance(exc, SlackApiError):
        return None
    response = exc.response
    data = getattr(response, "data", None)
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return str(data["error"])
    return f"http_{getattr(response, 'status_code', 0)}"


def _retry_after(exc: BaseException) -> float | None:
    from slack_sdk.errors import SlackApiError

    if not isinstance(exc, SlackApiError) or getattr(exc.response, "status_code", 0) != 429:
        return None
    headers = getattr(exc.response, "headers", None) or {}
    value = None
    for key, raw in dict(headers).items():
        if str(key).lower() == "retry-after":
            value = raw[0] if isinstance(raw, list | tuple) and raw else raw
    try:
        return max(0.0, float(value)) if value is not None else 1.0
    except (TypeError, ValueError):
        return 1.0


async def call(request: Awaitable[Any]) -> Any:
    """Await one Web API call; a 429 becomes ``RateLimitedError(retry_after=...)``."""
    try:
        return await request
    except Exception as exc:
        retry_after = _retry_after(exc)
        if retry_after is not None:
            raise RateLimitedError(f"Slack rate limit ({exc})", retry_after=retry_after) from exc
        raise
