"""``response_url`` endpoints: what an app posts after a click or a slash command.

No token is needed (as on Slack). A JSON body with ``replace_original`` rewrites the clicked
message, ``delete_original`` deletes it; otherwise the text is a new message: ephemeral (the
default) or ``response_type: in_channel``. A URL works ``response_url_uses`` times within
``response_url_lifetime`` seconds of the injected clock; after that Slack answers 404
``expired_url`` / ``used_url``.
"""

from __future__ import annotations

import json
import time

from aiohttp import web

from hotplex.testing.slack.limits import ApiError, check_blocks, check_text
from hotplex.testing.slack.records import JSON, Edit, Ephemeral, Message, ResponseUrl
from hotplex.testing.slack.state import SlackState


class ResponseUrls:
    def __init__(self, state: SlackState) -> None:
        self.state = state
        #: Every body posted to a response URL, in order (``(url id, body)``).
        self.posts: list[tuple[str, JSON]] = []

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/response/{url_id}", self.handle)]

    def issue(
        self, *, channel: str, user: str, message_ts: str | None, thread_ts: str | None
    ) -> str:
        url = ResponseUrl(
            self.state.new_id("R"), channel, user, self.state.clock(), message_ts, thread_ts
        )
        self.state.response_urls[url.id] = url
        return url.id

    async def handle(self, request: web.Request) -> web.Response:
        url = self.state.response_urls.get(request.match_info["url_id"])
        if self.state.settings.outage:
            return web.json_response({"ok": False, "error": "service_unavailable"}, status=503)
        if url is None:
            return web.json_response({"ok": False, "error": "invalid_url"}, status=404)
        settings = self.state.settings
        if self.state.clock() - url.issued_at > settings.response_url_lifetime:
            return web.json_response({"ok": False, "error": "expired_url"}, status=404)
        if url.uses >= settings.response_url_uses:
            return web.json_response({"ok": False, "error": "used_url"}, status=404)
        try:
            body = json.loads(await request.text())
        except ValueError:
            return web.json_response({"ok": False, "error": "invalid_payload"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"ok": False, "error": "invalid_payload"}, status=400)
        url.uses += 1
        self.posts.append((url.id, body))
        try:
            self._apply(url, body)
        except ApiError as error:
            return web.json_response({"ok": False, "error": error.code, **error.extra})
        finally:
            self.state.changed()
        return web.json_response({"ok": True})

    def _apply(self, url: ResponseUrl, body: JSON) -> None:
        if body.get("delete_original") and url.message_ts is not None:
            self.state.message(url.channel, url.message_ts).deleted = True
            return
        text = check_text(body.get("text"))
        blocks = check_blocks(body.get("blocks"))
        if body.get("replace_original") and url.message_ts is not None:
            message = self.state.message(url.channel, url.message_ts)
            message.edits.append(
                Edit(message.text, message.blocks, time.monotonic(), "response_url")
            )
            message.text, message.blocks = text, blocks
            message.note_text()
            return
        thread_ts = (
            body.get("thread_ts") if isinstance(body.get("thread_ts"), str) else url.thread_ts
        )
        if body.get("response_type") == "in_channel":
            self.state.add_message(
                Message(
                    channel=url.channel,
                    ts=self.state.new_ts(),
                    text=text,
                    user=self.state.bot_user_id,
                    bot_id=self.state.bot_id,
                    thread_ts=thread_ts,
                    blocks=blocks,
                )
            )
            return
        self.state.ephemerals.append(
            Ephemeral(url.channel, url.user, text, blocks, thread_ts, "response_url")
        )
