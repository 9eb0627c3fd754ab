"""A fake Slack on 127.0.0.1 that the real slack-sdk and slack-bolt talk to, unpatched.

Only aiohttp is needed to run it; the SDKs are the clients under test::

    from hotplex.testing.slack import FakeSlack

    async with FakeSlack() as slack:             # team T0HOTPLEX, bot user UBOT
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_base_url)
        handler = AsyncSocketModeHandler(AsyncApp(client=client), app_token=slack.app_token)
        slack.add_channel("C1", members=["U1"])    # the bot is a member unless bot_member=False
        slack.add_dm("U1")                         # DM channel "DU1"
        await handler.connect_async()
        await slack.wait_connected()
        ts = await slack.user_message("C1", "U1", "hi", mention=True)   # message + app_mention
        reply = await slack.wait_for(lambda: [m for m in slack.messages("C1", ts) if m.by_bot])

Constructor (keyword-only): ``team_id="T0HOTPLEX"``, ``bot_user_id="UBOT"``,
``bot_id="B0HOTPLEX"``, ``app_id="A0HOTPLEX"``, ``stream_lifetime=300.0``, ``clock=None``
(a callable returning seconds; times stream lifetimes, ``trigger_id`` and ``response_url``
expiry, so a test can fast-forward them), ``rate_limits="loose"`` (``"strict"``: Slack's
per-minute tier budgets and ~1/s per channel (bursts of 3) for ``chat.postMessage``;
``"loose"``: ten times those; ``"off"``), ``ack_timeout=3.0``, ``scopes=None`` (granted bot
scopes; default :data:`~hotplex.testing.slack.state.DEFAULT_SCOPES`).

Addresses and secrets: ``base_url`` (``http://127.0.0.1:PORT``), ``api_base_url`` (``…/api/``,
for ``AsyncWebClient(base_url=...)``, which Bolt and ``SocketModeClient`` reuse for
``apps.connections.open``), ``bot_token`` (``xoxb-…``), ``app_token`` (``xapp-…``),
``signing_secret``, ``team_id``, ``bot_user_id``, ``bot_id``, ``app_id``.

Settable knobs (any time): ``http_target`` (URL events are POSTed to when no socket is
connected), ``ack_timeout``, ``retry_delays`` (default ``(0.0, 0.5, 1.0)``: three retries),
``stream_lifetime``, ``streaming_enabled`` (``False``: ``chat.*Stream`` are
``unknown_method``), ``trigger_lifetime`` (3 s), ``scopes``, ``rate_limits``,
``echo_bot_messages`` (``True``: the app gets a ``message`` event with ``bot_id`` for each of
its own posts), ``max_connections`` (10; one more socket gets ``too_many_websockets``);
``set_rate_limit(method, calls, per_seconds)``; ``fail_next(method, error="ratelimited",
retry_after=1, status=None, times=1)`` (429 + ``Retry-After`` for ``ratelimited``, else
``{"ok": false, "error": error}``).

Workspace: ``add_user(id, name=None, is_bot=False)``, ``add_channel(id, name=None,
is_im=False, is_private=False, members=(), bot_member=True)``, ``add_dm(user_id)``.

What users do (each returns after the first delivery attempt; see *Delivery* below):
``await user_message(channel, user, text, thread_ts=None, mention=False, files=(),
app_mention_first=False) -> ts`` (``files``: ``[{"name", "content", "mimetype"?}]``, served
at ``url_private(_download)`` to the bot token only; a mention outside a DM is delivered as
``message`` and ``app_mention`` together, different ``event_id``, same ``client_msg_id``;
nothing is delivered from a conversation the bot is not in); ``user_edit(channel, ts, text)``;
``user_delete(channel, ts)``; ``user_joins(channel, user)``; ``bot_message(channel, text,
bot_id="B0OTHER")``; ``click_button(message_ts, action_id, user, value=None)`` (a
``block_actions`` with ``trigger_id`` and ``response_url``); ``submit_view(view_id=None,
user=None, values={block_id: {action_id: text}})`` (the ack's ``response_action`` is
``delivery.response``; a view closes on a plain ack); ``slash_command(command, text, user,
channel)`` (ack text is recorded as an ephemeral, source ``"ack"``);
``assistant_thread_started(user) -> thread_ts``; ``redeliver(delivery, reason="timeout")``
(again as its next retry, even if acked: a redelivery across an app restart);
``send_event(event)`` and ``event_envelope(event)`` (low level); ``post_signed(body,
signing_secret=None, timestamp=None, headers=None)`` and ``url_verification(challenge)`` (one
raw signed POST to ``http_target``, no retries: for signature tests).

Delivery (:mod:`~hotplex.testing.slack.delivery`): Socket Mode when a client is connected
(envelope ``{"envelope_id", "type", "payload", "accepts_response_payload", "retry_attempt",
"retry_reason"}`` after ``hello``); else an HTTP POST to ``http_target`` signed with Slack's
v0 scheme (events as JSON, interactivity as ``payload=`` form, slash commands as a form);
else it waits for a socket (or ``http_target``). Not acked within ``ack_timeout`` →
redelivered (new envelope, ``retry_attempt`` + 1; HTTP: ``X-Slack-Retry-Num``/
``X-Slack-Retry-Reason``), same ``event_id``. Records: ``deliveries`` (:class:`Delivery`
with ``attempts``, ``acked``, ``response``, ``gave_up``), ``acks``.

Web API (``/api/<method>``; args from JSON, form or query string; ``Authorization: Bearer``
required): ``auth.test`` (``X-OAuth-Scopes`` header on every answer), ``apps.connections.open``
(app token), ``chat.postMessage``/``update``/``delete``/``postEphemeral``,
``chat.startStream``/``appendStream``/``stopStream``, ``assistant.threads.setStatus``/
``setSuggestedPrompts``/``setTitle``, ``views.open``/``update``, ``files.info``,
``files.getUploadURLExternal`` + upload URL + ``files.completeUploadExternal``,
``conversations.info``/``open``, ``users.info``, ``reactions.add``/``remove``; response URLs
(no auth).
Limits and error codes are in :mod:`~hotplex.testing.slack.limits`,
:mod:`~hotplex.testing.slack.web_chat` (stream state machine) and
:mod:`~hotplex.testing.slack.rate`.

What a test reads: ``messages(channel, thread_ts=None)`` (:class:`Message`: ``text``,
``blocks``, ``ts``, ``thread_ts``, ``user``/``bot_id``/``by_bot``, ``streaming``, ``chunks``,
``edits``, ``files``, ``reactions``, ``posted_at``, ``first_text_at``), ``message(ts)``,
``calls``/``calls_to(method)`` (:class:`Call`: ``method``, ``args``, ``at`` (monotonic),
``outcome``, ``status``), ``ephemerals``, ``statuses``, ``views``, ``files``, ``uploads``,
``response_posts``, ``connections`` (open Socket Mode connections; ``sockets.history`` has
every one accepted, each with the frames it ``received`` and its ``pings``).

Waiting: ``await wait_for(predicate, timeout=5.0)`` (re-checked on every change of the fake or
:meth:`~FakeSlack.notify` call and at the deadline, returns the truthy value),
``wait_connected(count=1)``, ``wait_calls(method, count=1)``.

Socket faults: ``await disconnect_socket(reason="refresh_requested", close_after=5.0)``,
``silence_socket()`` (half-open: no pongs, frames dropped), ``await close_socket()``;
``await set_outage(True)`` (Slack down: 503 ``service_unavailable`` everywhere, sockets closed
and refused, events wait) and ``await set_outage(False)``;
``stop_stream_by_user(ts)``.
"""

from __future__ import annotations

from hotplex.testing.slack.events import FakeSlack
from hotplex.testing.slack.limits import ApiError
from hotplex.testing.slack.records import (
    Ack,
    Attempt,
    Call,
    Channel,
    Delivery,
    Edit,
    Ephemeral,
    FileRecord,
    Message,
    Status,
    User,
    View,
)
from hotplex.testing.slack.signing import signature, signed_headers
from hotplex.testing.slack.state import DEFAULT_SCOPES

__all__ = [
    "DEFAULT_SCOPES",
    "Ack",
    "ApiError",
    "Attempt",
    "Call",
    "Channel",
    "Delivery",
    "Edit",
    "Ephemeral",
    "FakeSlack",
    "FileRecord",
    "Message",
    "Status",
    "User",
    "View",
    "signature",
    "signed_headers",
]
