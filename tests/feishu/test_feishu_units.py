"""The Feishu adapter's pure parts: escape, card templates, the webhook guard, the event
mapping and the settings."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

import pytest
from hotplex_feishu.api import resolve_domain
from hotplex_feishu.cards import TEMPLATE_SPEC, CardTemplates, card_json, feishu_escape
from hotplex_feishu.inbound import ThreadMemory, to_message
from hotplex_feishu.settings import FeishuSettings
from hotplex_feishu.webhook import Rejected, WebhookGuard, sign
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from hotplex.chat import utf8_length
from hotplex.templating import make_environment
from hotplex.types import ApprovalOutcome, ApprovalRequest

BOT = "ou_bot"
BROADCASTS = [
    '<at user_id="all"></at>',
    "<at id=all></at>",
    '<at open_id="all">x</at>',
    "<at id=all>",
]


def templates() -> CardTemplates:
    return CardTemplates(make_environment({"feishu": TEMPLATE_SPEC}))


def request(**changes: Any) -> ApprovalRequest:
    values: dict[str, Any] = {
        "permission_id": "perm_1",
        "kind": "tool",
        "session_id": "s1",
        "address": "feishu:tk/oc_1/om_1",
        "tool": "Bash",
        "input": {"command": 'echo "<at id=all></at>"'},
        "reason": None,
        "scopes": ("once", "session"),
        "approvers": (),
        "created_at": 0.0,
        "expires_at": 60.0,
    }
    values.update(changes)
    return ApprovalRequest(**values)


# -- escape ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", BROADCASTS)
def test_agent_text_cannot_mention_everyone(text: str) -> None:
    escaped = feishu_escape(f"hi {text} there")
    assert "<at" not in escaped and "<" not in escaped
    assert escaped == f"hi {text.replace('<', '&lt;').replace('>', '&gt;')} there"


@given(st.text(), st.text())
def test_escape_works_character_by_character(a: str, b: str) -> None:
    assert feishu_escape(a + b) == feishu_escape(a) + feishu_escape(b)
    assert "<" not in feishu_escape(a)


# -- cards ----------------------------------------------------------------------------------


@given(st.text(max_size=200), st.one_of(st.none(), st.text(max_size=50)), st.booleans())
def test_reply_cards_are_json_whatever_the_text(text: str, status: str | None, live: bool) -> None:
    card = templates().reply(text, status=status, streaming=live)
    assert card["schema"] == "2.0" and card["config"]["streaming_mode"] is live
    elements = {e["element_id"]: e for e in card["body"]["elements"]}
    assert elements["answer"]["content"] == (text or "…")
    assert ("status" in elements) is live
    assert json.loads(card_json(card)) == card


def test_card_json_is_measured_in_utf8_bytes_without_ascii_escapes() -> None:
    card = templates().reply("中文" * 10)
    assert "\\u" not in card_json(card)
    assert utf8_length(card_json(card)) == len(card_json(card).encode())


def test_approval_card_has_three_buttons_carrying_the_request() -> None:
    card = templates().approval(request())
    buttons = [e for c in card["body"]["elements"][-1]["columns"] for e in c["elements"]]
    values = [b["behaviors"][0]["value"] for b in buttons]
    assert [(v["decision"], v["scope"]) for v in values] == [
        ("allow", "once"), ("allow", "session"), ("deny", "once")
    ]  # fmt: skip
    assert {v["id"] for v in values} == {"perm_1"} and {v["hotplex"] for v in values} == {
        "approval"
    }
    assert "<at" not in card_json(card)  # the tool input is escaped


def test_approval_card_without_session_scope_offers_no_session_button() -> None:
    card = templates().approval(request(scopes=("once",)))
    assert "Allow for this session" not in card_json(card)


def test_decided_card_shows_who_and_has_no_buttons() -> None:
    outcome = ApprovalOutcome("allow", by="feishu:ou_boss", scope="session")
    text = card_json(templates().approval(request(), outcome))
    assert "allowed by feishu:ou_boss (this session)" in text
    assert "button" not in text
    expired = card_json(templates().approval(request(kind="prompt"), ApprovalOutcome("expired")))
    assert "expired" in expired and "button" not in expired


def test_a_broken_override_fails_with_its_name(tmp_path: Any) -> None:
    (tmp_path / "feishu").mkdir()
    (tmp_path / "feishu" / "reply.json.j2").write_text("{not json")
    env = make_environment({"feishu": TEMPLATE_SPEC}, override_dir=tmp_path)
    with pytest.raises(ValueError, match=r"feishu/reply\.json\.j2"):
        CardTemplates(env).reply("x")


# -- webhook guard --------------------------------------------------------------------------


def test_the_documented_decryption_vector() -> None:
    from lark_oapi.core.utils.decryptor import AESCipher

    assert AESCipher("test key").decrypt_str("P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=") == (
        "hello world"
    )


def encrypt(key: str, plain: bytes) -> str:
    from Crypto.Cipher import AES

    iv = os.urandom(16)
    pad = 16 - len(plain) % 16
    cipher = AES.new(hashlib.sha256(key.encode()).digest(), AES.MODE_CBC, iv)
    return base64.b64encode(iv + cipher.encrypt(plain + bytes([pad]) * pad)).decode()


NOW = 1_760_000_000.0
KEY, TOKEN = "enc-key", "v-token"


def guard(**kw: Any) -> WebhookGuard:
    args: dict[str, Any] = {"encrypt_key": KEY, "verification_token": TOKEN, "clock": lambda: NOW}
    args.update(kw)
    return WebhookGuard(**args)


def event_body(token: str = TOKEN) -> dict[str, Any]:
    return {"schema": "2.0", "header": {"event_id": "e1", "event_type": "im.message.receive_v1",
            "token": token, "tenant_key": "tk"}, "event": {}}  # fmt: skip


def signed(body: bytes, *, ts: float = NOW, key: str = KEY) -> dict[str, str]:
    stamp = str(int(ts))
    return {"X-Lark-Request-Timestamp": stamp, "X-Lark-Request-Nonce": "n1",
            "X-Lark-Signature": sign(stamp, "n1", key, body)}  # fmt: skip


def encrypted(payload: dict[str, Any], key: str = KEY) -> bytes:
    return json.dumps({"encrypt": encrypt(key, json.dumps(payload).encode())}).encode()


def test_an_encrypted_signed_event_opens() -> None:
    body = encrypted(event_body())
    kind, envelope = guard().open(signed(body), body)
    assert kind == "event" and envelope["header"]["event_id"] == "e1"


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("bad signature", 401),
        ("stale timestamp", 401),
        ("future timestamp", 401),
        ("no signature", 401),
        ("wrong token", 401),
        ("wrong key", 400),
        ("not json", 400),
        ("bad base64", 400),
        ("plain body with a key set", 400),
    ],
)
def test_refusals(case: str, status: int) -> None:
    body = encrypted(event_body())
    headers = signed(body)
    if case == "bad signature":
        headers["X-Lark-Signature"] = "0" * 64
    elif case == "stale timestamp":
        headers = signed(body, ts=NOW - 301)
    elif case == "future timestamp":
        headers = signed(body, ts=NOW + 301)
    elif case == "no signature":
        headers = {}
    elif case == "wrong token":
        body = encrypted(event_body("nope"))
        headers = signed(body)
    elif case == "wrong key":
        body = encrypted(event_body(), key="other")
        headers = signed(body)
    elif case == "not json":
        body = b"{nope"
    elif case == "bad base64":
        body = b'{"encrypt": "!!!"}'
    else:
        body = json.dumps(event_body()).encode()
        headers = signed(body)
    with pytest.raises(Rejected) as caught:
        guard().open(headers, body)
    assert caught.value.status == status
    assert caught.value.public in ("bad request", "unauthorized")


def test_plain_mode_checks_the_token() -> None:
    plain = guard(encrypt_key=None)
    body = json.dumps(event_body()).encode()
    assert plain.open({}, body)[0] == "event"
    with pytest.raises(Rejected):
        plain.open({}, json.dumps(event_body("x")).encode())


def test_url_verification_plain_and_encrypted() -> None:
    challenge = {"type": "url_verification", "challenge": "c-1", "token": TOKEN}
    kind, envelope = guard(encrypt_key=None).open({}, json.dumps(challenge).encode())
    assert (kind, envelope["challenge"]) == ("challenge", "c-1")
    kind, envelope = guard().open({}, encrypted(challenge))
    assert (kind, envelope["challenge"]) == ("challenge", "c-1")
    with pytest.raises(Rejected):
        guard().open({}, encrypted({**challenge, "token": "wrong"}))


@given(st.binary(max_size=300))
def test_garbage_is_always_a_4xx(body: bytes) -> None:
    for variant in (body, json.dumps({"encrypt": base64.b64encode(body).decode()}).encode()):
        with pytest.raises(Rejected) as caught:
            guard().open(signed(variant), variant)
        assert caught.value.status in (400, 401)


# -- events -> IncomingMessage ----------------------------------------------------------


async def no_download(message_id: str, key: str, kind: str) -> bytes:
    return f"{message_id}/{key}/{kind}".encode()


def receive(
    text: str = "hi",
    *,
    chat_type: str = "p2p",
    mentions: list[dict[str, Any]] | None = None,
    root: str | None = None,
    message_type: str = "text",
    content: dict[str, Any] | None = None,
    sender_type: str = "user",
    message_id: str = "om_2",
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": message_id, "chat_id": "oc_1", "chat_type": chat_type,
        "message_type": message_type,
        "content": json.dumps(content if content is not None else {"text": text}),
        "mentions": mentions or [],
    }  # fmt: skip
    if root:
        message["root_id"] = root
    return {
        "schema": "2.0",
        "header": {"event_id": "ev_9", "event_type": "im.message.receive_v1", "tenant_key": "tk"},
        "event": {"sender": {"sender_id": {"open_id": "ou_alice"}, "sender_type": sender_type},
                  "message": message},
    }  # fmt: skip


def bot_mention(key: str = "@_user_1") -> dict[str, Any]:
    return {"key": key, "id": {"open_id": BOT}, "name": "HotPlex"}


def test_a_p2p_message() -> None:
    message = to_message(
        receive("hello"), bot_open_id=BOT, threads=ThreadMemory(), download=no_download
    )
    assert message is not None
    assert message.address == "feishu:tk/oc_1" and message.direct and not message.from_bot
    assert message.user == "feishu:ou_alice" and message.text == "hello"
    assert message.event_id == "feishu:ev_9" and message.message_key == "feishu:om_2"
    assert message.ref is not None and message.ref.message_id == "om_2"


def test_a_group_mention_starts_a_thread_the_bot_then_follows() -> None:
    threads = ThreadMemory()
    mention = receive("@_user_1 run  the tests", chat_type="group", mentions=[bot_mention()])
    first = to_message(mention, bot_open_id=BOT, threads=threads, download=no_download)
    assert first is not None
    assert first.address == "feishu:tk/oc_1/om_2" and first.mentions_bot and not first.direct
    assert first.text == "run the tests"
    follow = to_message(receive("and lint", chat_type="group", root="om_2"), bot_open_id=BOT,
                        threads=threads, download=no_download)  # fmt: skip
    assert follow is not None and follow.address == first.address and follow.mentions_bot
    chatter = receive("chatter", chat_type="group", message_id="om_3")
    other = to_message(chatter, bot_open_id=BOT, threads=threads,
                       download=no_download)  # fmt: skip
    assert other is not None and not other.mentions_bot


def test_other_mentions_keep_their_names() -> None:
    other = {"key": "@_user_2", "id": {"open_id": "ou_bob"}, "name": "Bob"}
    event = receive("@_user_1 ask @_user_2", chat_type="group", mentions=[bot_mention(), other])
    message = to_message(event, bot_open_id=BOT, threads=ThreadMemory(), download=no_download)
    assert message is not None and message.text == "ask @Bob"


async def test_an_image_becomes_an_attachment_downloaded_by_resource() -> None:
    event = receive(message_type="image", content={"image_key": "img_1"})
    message = to_message(event, bot_open_id=BOT, threads=ThreadMemory(), download=no_download)
    assert message is not None and len(message.attachments) == 1
    attachment = message.attachments[0]
    assert attachment.kind == "image"
    assert await attachment.download() == b"om_2/img_1/image"


def test_a_post_with_code_and_image() -> None:
    post = {"title": "T", "content": [[{"tag": "text", "text": "look "},
            {"tag": "img", "image_key": "img_2"}], [{"tag": "code_block", "language": "py",
            "text": "print(1)"}]]}  # fmt: skip
    message = to_message(receive(message_type="post", content={"zh_cn": post}), bot_open_id=BOT,
                         threads=ThreadMemory(), download=no_download)  # fmt: skip
    assert message is not None
    assert message.text.startswith("T\nlook") and "```py\nprint(1)\n```" in message.text
    assert [a.name for a in message.attachments] == ["img_2.png"]


def test_bots_and_unreadable_messages() -> None:
    bot = to_message(receive(sender_type="app"), bot_open_id=BOT, threads=ThreadMemory(),
                     download=no_download)  # fmt: skip
    assert bot is not None and bot.from_bot
    sticker = receive(message_type="sticker", content={"file_key": "s"})
    assert (
        to_message(sticker, bot_open_id=BOT, threads=ThreadMemory(), download=no_download) is None
    )


# -- settings -------------------------------------------------------------------------------


def test_domains() -> None:
    assert resolve_domain("feishu") == "https://open.feishu.cn"
    assert resolve_domain("lark") == "https://open.larksuite.com"
    assert resolve_domain("http://127.0.0.1:9/") == "http://127.0.0.1:9"
    with pytest.raises(ValidationError, match="feishu, lark or a URL"):
        FeishuSettings(domain="open.feishu.cn")


def test_webhook_mode_needs_a_token_or_key() -> None:
    with pytest.raises(ValidationError, match="verification_token or encrypt_key"):
        FeishuSettings(enabled=True, mode="webhook", app_id="cli_1", app_secret="s")  # type: ignore[arg-type]
    FeishuSettings(enabled=True, mode="webhook", app_id="cli_1", app_secret="s",  # type: ignore[arg-type]
                   verification_token="t")  # fmt: skip
