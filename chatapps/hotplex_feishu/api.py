"""The Open API as the adapter uses it: lark-oapi's client with a tenant token we keep.

lark-oapi's own token manager fetches the tenant token with blocking ``requests`` (it
would stall the event loop), caches it in a process-wide cache shared by every client, and
never refreshes it when Feishu answers that it is invalid. So the client runs with
``enable_set_token`` and :class:`FeishuApi` passes a token per call: fetched with the SDK's
async ``auth.v3.tenant_access_token.ainternal``, refreshed before it expires, and fetched
again once when a call is refused for an invalid token. A frequency-limit answer becomes
core's ``RateLimitedError`` with the wait Feishu asks for.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from hotplex.errors import HotplexError, RateLimitedError

__all__ = [
    "INVALID_TOKEN",
    "RATE_LIMITED",
    "FeishuApi",
    "FeishuApiError",
    "FeishuAuthError",
    "resolve_domain",
]

log = logging.getLogger(__name__)

FEISHU = "https://open.feishu.cn"
LARK = "https://open.larksuite.com"
#: Answers meaning the tenant token is invalid or expired: fetch a new one, retry once.
INVALID_TOKEN = frozenset({99991661, 99991663, 99991664, 99991668})
#: Frequency-limit answers (API-wide, per chat, per message, per card).
RATE_LIMITED = frozenset({99991400, 230020, 11232, 11233, 300316})


def resolve_domain(domain: str) -> str:
    """``feishu`` and ``lark`` name the two platforms; anything else is an origin URL."""
    named = {"feishu": FEISHU, "lark": LARK}
    return named.get(domain.strip().lower(), domain.rstrip("/"))


class FeishuApiError(HotplexError):
    """Feishu refused a call: ``code`` is Feishu's error code (None: no JSON answer)."""

    def __init__(self, what: str, code: int | None, msg: str, status: int | None = None):
        self.code = code
        self.status = status
        super().__init__(
            f"Feishu {what} failed: {msg or 'no message'} (code {code}, HTTP {status})"
        )


class FeishuAuthError(FeishuApiError):
    """The app's credentials were refused (wrong app id or secret, app disabled)."""


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def _retry_after(raw: Any) -> float:
    value = _header(getattr(raw, "headers", None), "x-ogw-ratelimit-reset")
    try:
        return max(0.05, min(float(value), 60.0)) if value is not None else 1.0
    except ValueError:
        return 1.0


def _code_of(raw: Any) -> tuple[int | None, str]:
    try:
        data = json.loads(getattr(raw, "content", None) or b"")
    except ValueError:
        return None, ""
    if not isinstance(data, dict) or not isinstance(data.get("code"), int):
        return None, ""
    return data["code"], str(data.get("msg") or "")


class FeishuApi:
    """lark-oapi's client for one app, with the tenant token kept here."""

    def __init__(
        self,
        app_id: str,
        app_secret: str,
        domain: str,
        *,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import lark_oapi as lark

        self.app_id = app_id
        self._secret = app_secret
        self.domain = resolve_domain(domain)
        self.client = (
            lark.Client.builder()
            .app_id(app_id)
            .app_secret(app_secret)
            .domain(self.domain)
            .timeout(timeout)
            .enable_set_token(True)
            .log_level(lark.LogLevel.WARNING)
            .build()
        )
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()

    # -- the tenant token -----------------------------------------------------------------

    async def token(self, *, stale: str | None = None) -> str:
        """The tenant token; a new one when it is due, or when ``stale`` is the one held
        (a call was refused with it; concurrent refusals fetch once)."""
        async with self._lock:
            due = self._token is None or self._clock() >= self._refresh_at
            if due or (stale is not None and stale == self._token):
                await self._fetch_token()
            assert self._token is not None
            return self._token

    async def _fetch_token(self) -> None:
        from lark_oapi.api.auth.v3 import (
            InternalTenantAccessTokenRequest,
            InternalTenantAccessTokenRequestBody,
        )

        body = (
            InternalTenantAccessTokenRequestBody.builder()
            .app_id(self.app_id)
            .app_secret(self._secret)
            .build()
        )
        request = InternalTenantAccessTokenRequest.builder().request_body(body).build()
        response = await self.client.auth.v3.tenant_access_token.ainternal(request)
        raw = response.raw
        try:
            data = json.loads(raw.content or b"{}")
        except ValueError:
            data = {}
        token = data.get("tenant_access_token")
        if data.get("code") != 0 or not isinstance(token, str) or not token:
            raise FeishuAuthError(
                f"tenant token for app {self.app_id}",
                data.get("code"),
                str(data.get("msg") or "no token in the answer"),
                getattr(raw, "status_code", None),
            )
        expire = float(data.get("expire") or 7200)
        # lark-oapi's margin (10 minutes early), or half the lifetime of a short token
        margin = 600.0 if expire > 1200 else expire / 2
        self._token = token
        self._refresh_at = self._clock() + expire - margin
        log.info("feishu: tenant token for app %s valid for %.0f s", self.app_id, expire)

    # -- calls ------------------------------------------------------------------------------

    async def call(self, what: str, send: Callable[[Any], Awaitable[Any]]) -> Any:
        """``send(option)`` with the tenant token in a ``RequestOption``; the response when
        its code is 0. Raises RateLimitedError for a frequency limit and FeishuApiError
        for any other refusal; an invalid token is fetched again and the call retried once."""
        from lark_oapi import RequestOption

        for attempt in range(2):
            token = await self.token()
            option = RequestOption.builder().tenant_access_token(token).build()
            response = await send(option)
            code = getattr(response, "code", None)
            msg = str(getattr(response, "msg", "") or "")
            raw = getattr(response, "raw", None)
            status = getattr(raw, "status_code", None)
            if code is None:  # a raw request whose JSON answer lark-oapi did not read
                code, msg = _code_of(raw)
            if code == 0:
                return response
            if code in INVALID_TOKEN and attempt == 0:
                log.info(
                    "feishu: %s refused the tenant token (code %s); fetching a new one", what, code
                )
                await self.token(stale=token)
                continue
            if code in RATE_LIMITED or status == 429:
                raise RateLimitedError(
                    f"Feishu {what}: frequency limit", retry_after=_retry_after(raw)
                )
            raise FeishuApiError(what, code, msg, status)
        raise AssertionError("unreachable")

    async def raw(
        self, what: str, method: str, uri: str, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """A call lark-oapi has no typed method for (``GET /open-apis/bot/v3/info``); the
        decoded JSON answer."""
        import lark_oapi as lark

        def build() -> Any:
            builder = (
                lark.BaseRequest.builder()
                .http_method(lark.HttpMethod[method])
                .uri(uri)
                .token_types({lark.AccessTokenType.TENANT})
            )
            if body is not None:
                builder = builder.body(dict(body))
            return builder.build()

        response = await self.call(what, lambda option: self.client.arequest(build(), option))
        try:
            data = json.loads(response.raw.content or b"{}")
        except ValueError:
            raise FeishuApiError(what, None, "the answer is not JSON") from None
        return data if isinstance(data, dict) else {}

    async def bot_open_id(self) -> str:
        """The bot's own open_id (to tell a mention of the bot from other mentions)."""
        data = await self.raw("bot info", "GET", "/open-apis/bot/v3/info")
        bot = data.get("bot") or {}
        open_id = bot.get("open_id") if isinstance(bot, dict) else None
        if not isinstance(open_id, str) or not open_id:
            raise FeishuApiError("bot info", data.get("code"), "no bot open_id in the answer")
        return open_id
