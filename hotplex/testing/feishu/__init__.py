"""A fake Feishu/Lark open platform on 127.0.0.1, driven by the real lark-oapi unpatched.

It serves from its own thread and event loop (lark-oapi fetches tenant tokens with blocking
``requests``, even from its async methods), so use it from any test::

    async with FakeFeishu(encrypt_key="ek") as fs:          # or: with FakeFeishu() as fs
        client = (lark.Client.builder().app_id(fs.app_id).app_secret(fs.app_secret)
                  .domain(fs.base_url).build())
        ws = lark.ws.Client(fs.app_id, fs.app_secret, event_handler=handler,
                            domain=fs.base_url)          # on its own thread and loop
        fs.add_chat("oc_1", "group", members=["ou_alice"])
        message_id = await fs.user_message("oc_1", "ou_alice", "hi", mention_bot=True)
        await fs.wait_for(lambda: len(fs.messages("oc_1")) == 2)

Constructor (keyword-only): ``app_id`` (default: a fresh ``cli_<hex>``, because lark-oapi
caches tenant tokens per app id for the whole process), ``app_secret`` (default random),
``verification_token`` (``"v_token"``), ``encrypt_key`` (``""``: plain, unsigned webhooks),
``tenant_key`` (``"T1"``), ``bot_open_id`` (``"ou_bot"``), ``bot_name``, ``clock`` (seconds
since the epoch; :class:`ManualClock` to move time by hand: token expiry, the 10-minute
streaming timeout, the 14-day limits and the rate windows all use it), ``limits``
(:class:`Limits`), ``client_config`` (the long connection's ClientConfig; defaults
``ReconnectCount=-1, ReconnectInterval=1, ReconnectNonce=0, PingInterval=120``),
``repush_delays`` (default ``()``: an event push that is not acked is pushed again, same
``event_id``, after each of these delays in seconds until one is acked; callbacks never).

Public API of :class:`FakeFeishu`:

- ``base_url``: ``http://127.0.0.1:PORT``, the ``domain`` for ``lark.Client`` and for
  ``lark.ws.Client``; ``app_id``, ``app_secret``, ``verification_token``, ``encrypt_key``,
  ``tenant_key``, ``bot_open_id``.
- Directory: ``add_user(open_id, name=None)``, ``add_chat(chat_id, chat_type="group",
  members=(), name="")``, ``p2p_chat(open_id) -> chat_id``.
- Users act: ``await user_message(chat_id, sender_open_id, text="", *, mention_bot=False,
  mentions=(), root_id=None, parent_id=None, image=None | bytes, file=None | (name, bytes),
  via=None, fragments=1) -> message_id`` stores the message (attachments become resources
  downloadable through the message-resource API) and pushes ``im.message.receive_v1``;
  ``await click_card(message_id, value, operator_open_id, *, tag="button", name=None,
  form_value=None, input_value=None, via=None) -> CardAnswer`` pushes
  ``card.action.trigger`` and applies a returned raw card to the message unless the card is
  streaming; ``await verify_url(url=None, *, token=None)`` posts a ``url_verification``.
- Pushing: over the long connection when a client is connected, else as a webhook POST to
  ``webhook_url`` (card callbacks to ``card_url`` when set); with an Encrypt Key the body is
  ``{"encrypt": ...}`` (AES-256-CBC, key sha256(encrypt_key), random IV prefix, base64) and
  carries ``X-Lark-Request-Timestamp``, ``X-Lark-Request-Nonce`` and ``X-Lark-Signature``.
  Each push waits up to ``Limits.ack_seconds`` (3 s) for the ack or HTTP answer and is
  recorded in ``deliveries`` (:class:`Delivery`). ``await repush(event_id)`` pushes an event
  again with the same ``event_id``. To forge one: ``prepare_user_message(..., token=...)``
  or ``envelope(event_type, event, token=...)``, then ``await deliver(payload, via=...,
  url=..., encrypt_key=..., timestamp=..., nonce=..., signature=...)``.
- Observing: ``messages(chat_id=None) -> [MessageView]`` (users' and app's messages with
  current content; ``card`` is the latest card JSON, for a CardKit entity its current JSON;
  ``text`` the readable text), ``message(message_id)``, ``cards`` (CardKit entities by
  ``card_id``: ``card``, ``streaming_mode``, ``sequence``, ``history`` of :class:`CardOp`,
  ``update_times``, ``element_text(id)``, ``text``), ``calls`` / ``calls_named(name)``
  (:class:`Call`: ``name`` such as ``message.create``, method, path, query, body, time,
  status, code), ``acks`` (:class:`Ack` of the long connection), ``resource(key)``.
- More long-connection faults: ``reject_handshake(status=514, msg=..., auth_code=1000040350)``
  refuses WebSocket upgrades with the ``handshake-*`` headers (514 + 1000040350 and 403 stop
  the SDK client; None accepts again); ``set_client_config(**values)`` changes the
  ClientConfig of the next pongs and endpoint answers. ``deliver(..., retry=False)`` pushes
  without the ``repush_delays`` schedule; ``deliver(..., fragments=3, lose_fragment=1)``
  never sends one part; ``drop_connection(abrupt=True)`` cuts the TCP connection without a
  closing handshake.
- ``mute(muted=True)``: keep the sockets open but answer no pings (protocol or WebSocket);
  ``pongs`` counts the protocol pongs sent.
- Delayed card update: ``POST /open-apis/interactive/v1/card/update`` with a click's token
  (after the answer, 30 minutes, two uses; ``200670`` otherwise).
- Ephemeral cards: ``POST /open-apis/ephemeral/v1/send`` (a card one member of a group sees:
  ``MessageView.ephemeral_to``) and ``/open-apis/ephemeral/v1/delete``.
- Waiting: ``await wait_for(predicate, timeout=5.0)``: re-checked on every change in the fake
  (call, push, ack, connection), no polling.
- Faults: ``fail_next(target, code=99991400, *, msg=..., status=None, times=1, reset=1.0)``
  (``reset``: the seconds a rate-limit answer's ``x-ogw-ratelimit-reset`` asks for) where
  ``target`` is a call name (``tenant_access_token.internal``, ``message.create``,
  ``message.reply``, ``message.patch``, ``message.update``, ``message.delete``,
  ``message_resource.get``, ``image.create``, ``file.create``, ``card.create``,
  ``card.update``, ``card.settings``, ``card_element.content``, ``card_element.create``,
  ``card_element.update``, ``card_element.patch``, ``card_element.delete``,
  ``ws.endpoint``) or an exact path; ``expire_tokens()``; ``await drop_connection()``;
  ``reject_connections(code)`` (the endpoint answers ``code``: 1 is retried, others stop
  the SDK client; None to accept again).
- Long connection state: ``connected``, ``connection_count``, ``endpoint_requests``, ``pings``.
- The bot's identity: ``GET /open-apis/bot/v3/info`` answers ``{"code": 0, "bot": {"open_id":
  bot_open_id, "app_name": bot_name, ...}}`` (call name ``bot.info``).

Rules enforced (codes in :mod:`hotplex.testing.feishu.limits`): tenant token on every call
(``99991661`` missing, ``99991663`` invalid or expired; a token fetch within 30 minutes of
expiry issues a new one); messages: JSON-string content, 150 KB text / 30 KB card and post
(``230025``), 5 sends per second per chat and 5 patches per second per message
(``230020``), uuid dedupe for an hour, patch only cards of the app within 14 days
(``230031``), 20 edits (``230072``), a CardKit entity sent once; CardKit: JSON 2.0
(``300303``), ``update_multi`` not false (``300302``), unique element ids (``300301``),
strictly increasing ``sequence`` per card (``300317``), uuid idempotence (``200770``),
10 operations per second per card (``99991400``), text only while streaming (``300309``),
streaming auto-closed 10 minutes after it opened (``200850``), 30 KB (``200860``); errors are
HTTP 400 ``{"code", "msg"}`` (429 with ``x-ogw-ratelimit-*`` headers for ``99991400``); at
most 50 long connections per app (``Limits.connections``).
"""

from __future__ import annotations

from hotplex.testing.feishu.crypto import decrypt, encrypt, signature, signed_headers
from hotplex.testing.feishu.frames import Frame
from hotplex.testing.feishu.limits import FeishuError, Limits, ManualClock
from hotplex.testing.feishu.models import (
    Ack,
    Call,
    CardAnswer,
    CardEntity,
    CardOp,
    Delivery,
    MessageView,
)
from hotplex.testing.feishu.server import FakeFeishu

__all__ = [
    "Ack",
    "Call",
    "CardAnswer",
    "CardEntity",
    "CardOp",
    "Delivery",
    "FakeFeishu",
    "FeishuError",
    "Frame",
    "Limits",
    "ManualClock",
    "MessageView",
    "decrypt",
    "encrypt",
    "signature",
    "signed_headers",
]
