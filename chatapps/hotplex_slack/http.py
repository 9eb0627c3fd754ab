"""HTTP mode: Slack's requests (events, button presses, the modal, the slash command) on
the adapter's route ``POST /slack/events``, served on the gateway's port.

The signature is checked on the raw body before anything else (slack-sdk's
``SignatureVerifier``: HMAC-SHA256 of ``v0:<timestamp>:<body>`` with the signing secret,
timestamps at most five minutes off): a bad or stale one is answered 401 and no handler
runs. Then the request goes to the Bolt app, which acknowledges within Slack's 3 s and
runs the listeners after (retries carry ``X-Slack-Retry-Num`` and the same event id, so
core's inbound log drops them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from hotplex.records import RouteSpec

if TYPE_CHECKING:
    from hotplex_slack.adapter import SlackAdapter

__all__ = ["PATH", "events_route"]

PATH = "/slack/events"


def events_route(adapter: SlackAdapter) -> RouteSpec:
    """The route; ``auth="none"`` because Slack signs its requests instead."""
    from slack_bolt.adapter.aiohttp import to_aiohttp_response
    from slack_bolt.request.async_request import AsyncBoltRequest
    from slack_sdk.signature import SignatureVerifier

    secret = adapter.settings.signing_secret
    verifier = SignatureVerifier(secret.get_secret_value() if secret else "")

    async def handle(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        valid = verifier.is_valid(
            raw,
            request.headers.get("X-Slack-Request-Timestamp", ""),
            request.headers.get("X-Slack-Signature", ""),
        )
        if not valid:
            return web.json_response({"error": "invalid request"}, status=401)
        if not adapter.ready():  # Slack sends it again later
            return web.json_response({"error": "not ready"}, status=503)
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return web.json_response({"error": "the body is not UTF-8"}, status=400)
        bolt_request = AsyncBoltRequest(
            body=body, query=request.query_string, headers=dict(request.headers)
        )
        return await to_aiohttp_response(await adapter.app.async_dispatch(bolt_request))

    return RouteSpec("POST", PATH, handle, name="slack_events", auth="none")
