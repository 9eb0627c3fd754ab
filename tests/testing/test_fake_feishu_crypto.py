"""The fake's encryption, signature and frame codec against lark-oapi's own code and the
documented vectors (not against the fake's own idea of them)."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lark_oapi.core.utils import AESCipher
from lark_oapi.ws.pb.pbbp2_pb2 import Frame as LarkFrame

from hotplex.testing.feishu import Frame, decrypt, encrypt, signature, signed_headers
from hotplex.testing.feishu.events import webhook_body
from hotplex.testing.feishu.frames import FrameError

#: The known-answer vector used across Feishu SDKs' tests (reliability.md §2.1).
VECTOR_KEY = "test key"
VECTOR_CIPHERTEXT = "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk="
#: A client ping for service_id=42, byte for byte (platforms.md B8).
PING_42 = bytes.fromhex("08001000182a20002a0c0a0474797065120470696e67")


def test_the_documented_vector_decrypts() -> None:
    assert decrypt(VECTOR_KEY, VECTOR_CIPHERTEXT) == "hello world"
    assert AESCipher(VECTOR_KEY).decrypt_str(VECTOR_CIPHERTEXT) == "hello world"


@settings(deadline=None, max_examples=50)
@given(key=st.text(min_size=1, max_size=40), text=st.text(max_size=300))
def test_lark_decrypts_what_the_fake_encrypts(key: str, text: str) -> None:
    encrypted = encrypt(key, text)
    assert AESCipher(key).decrypt_str(encrypted) == text
    assert decrypt(key, encrypted) == text


def test_each_encryption_takes_a_fresh_iv() -> None:
    assert encrypt("k", "same") != encrypt("k", "same")


@pytest.mark.parametrize("bad", ["", "not base64!", "AAAA", VECTOR_CIPHERTEXT[:-8] + "AAAAAAA="])
def test_decrypt_refuses_what_is_not_ciphertext(bad: str) -> None:
    with pytest.raises(ValueError):
        decrypt(VECTOR_KEY, bad)


def test_signature_follows_the_documented_formula() -> None:
    # hex(sha256(timestamp + nonce + encrypt_key + body)), computed here by hand
    body = b'{"encrypt":"abc"}'
    expected = hashlib.sha256(b"1700000000" + b"n0nce" + b"my-key" + body).hexdigest()
    assert signature("1700000000", "n0nce", "my-key", body) == expected
    assert signed_headers("my-key", body, timestamp="1700000000", nonce="n0nce") == {
        "X-Lark-Request-Timestamp": "1700000000",
        "X-Lark-Request-Nonce": "n0nce",
        "X-Lark-Signature": expected,
    }


def test_the_webhook_body_is_encrypted_and_signed_over_the_raw_bytes() -> None:
    payload = {"schema": "2.0", "header": {"event_id": "e1"}, "event": {"text": "你好"}}
    body, headers = webhook_body(payload, encrypt_key="ek", timestamp="17", nonce="n")
    assert set(json.loads(body)) == {"encrypt"}
    assert json.loads(AESCipher("ek").decrypt_str(json.loads(body)["encrypt"])) == payload
    expected = hashlib.sha256(b"17" + b"n" + b"ek" + body).hexdigest()
    assert headers["X-Lark-Signature"] == expected
    plain, plain_headers = webhook_body(payload, encrypt_key="", timestamp="17")
    assert json.loads(plain) == payload
    assert "X-Lark-Signature" not in plain_headers


def test_the_ping_frame_matches_the_documented_bytes() -> None:
    ping = Frame(0, 0, 42, 0, [("type", "ping")])
    assert ping.encode() == PING_42
    assert Frame.decode(PING_42) == ping


headers_st = st.lists(st.tuples(st.text(max_size=12), st.text(max_size=20)), max_size=6)


@settings(deadline=None, max_examples=100)
@given(
    seq=st.integers(0, 2**64 - 1),
    log=st.integers(0, 2**64 - 1),
    service=st.integers(-(2**31), 2**31 - 1),
    method=st.integers(0, 1),
    headers=headers_st,
    payload=st.one_of(st.none(), st.binary(max_size=200)),
)
def test_frames_match_lark_oapis_codec_byte_for_byte(
    seq: int,
    log: int,
    service: int,
    method: int,
    headers: list[tuple[str, str]],
    payload: bytes | None,
) -> None:
    ours = Frame(seq, log, service, method, headers, payload=payload)
    theirs = LarkFrame()
    theirs.SeqID, theirs.LogID, theirs.service, theirs.method = seq, log, service, method
    for key, value in headers:
        header = theirs.headers.add()
        header.key, header.value = key, value
    if payload is not None:
        theirs.payload = payload
    assert ours.encode() == theirs.SerializeToString()
    parsed = LarkFrame()
    parsed.ParseFromString(ours.encode())
    assert [(h.key, h.value) for h in parsed.headers] == headers
    assert Frame.decode(theirs.SerializeToString()) == ours


@pytest.mark.parametrize("bad", [b"\x08", b"\x42\x05ab", b"\xff" * 11, b"\x0b"])
def test_broken_frames_raise_frame_error(bad: bytes) -> None:
    with pytest.raises(FrameError):
        Frame.decode(bad)
