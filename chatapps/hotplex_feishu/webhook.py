"""Checking a webhook request before anything of it runs.

lark-oapi's dispatcher compares the signature with ``!=``, never looks at the timestamp
(a captured request replays forever) and answers every problem with HTTP 500 and the
exception text. :class:`WebhookGuard` runs first: the ``X-Lark-Signature`` (SHA-256 of
timestamp, nonce, encrypt key and the raw body) compared in constant time, the timestamp
within a window, the body decrypted (AES-256-CBC, lark-oapi's cipher), the verification
token compared in constant time. A refusal is :class:`Rejected` with a status (400 for a
malformed request, 401 for a failed check) and a fixed public reason; what exactly failed
is only logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

__all__ = ["Rejected", "WebhookGuard", "sign"]

log = logging.getLogger(__name__)


class Rejected(Exception):
    """A request refused: ``status`` and the ``public`` words to answer with."""

    def __init__(self, status: int, why: str) -> None:
        self.status = status
        self.public = "bad request" if status == 400 else "unauthorized"
        super().__init__(why)


def sign(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """Feishu's request signature (hex SHA-256, not an HMAC)."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode("utf-8") + body).hexdigest()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


class WebhookGuard:
    """Opens a webhook request: its envelope once every configured check passed."""

    def __init__(
        self,
        *,
        encrypt_key: str | None,
        verification_token: str | None,
        window: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = encrypt_key or None
        self._token = verification_token or None
        self._window = window
        self._clock = clock

    def open(
        self, headers: Mapping[str, str], body: bytes
    ) -> tuple[Literal["challenge", "event"], dict[str, Any]]:
        outer = self._json(body)
        if "encrypt" in outer:
            envelope = self._json(self._decrypt(outer["encrypt"]))
        elif self._key is not None:
            raise Rejected(400, "an encrypt key is set but the body is not encrypted")
        else:
            envelope = outer
        if envelope.get("type") == "url_verification":
            self._check_token(envelope.get("token"))
            if not isinstance(envelope.get("challenge"), str):
                raise Rejected(400, "url_verification without a challenge")
            return "challenge", envelope
        if self._key is not None:
            self._check_signature(headers, body)
        header = envelope.get("header")
        token = header.get("token") if isinstance(header, dict) else envelope.get("token")
        self._check_token(token)
        return "event", envelope

    def _json(self, data: bytes | str) -> dict[str, Any]:
        try:
            value = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise Rejected(400, "the body is not JSON") from None
        if not isinstance(value, dict):
            raise Rejected(400, "the body is not a JSON object")
        return value

    def _decrypt(self, encrypted: Any) -> bytes:
        if self._key is None:
            raise Rejected(400, "the body is encrypted but no encrypt key is set")
        if not isinstance(encrypted, str):
            raise Rejected(400, "encrypt is not a string")
        from lark_oapi.core.utils.decryptor import AESCipher

        try:
            plain: str = AESCipher(self._key).decrypt_str(encrypted)
            return plain.encode("utf-8")
        except Exception:  # bad base64, length, padding or text: all one answer
            raise Rejected(400, "the body does not decrypt with the encrypt key") from None

    def _check_token(self, token: Any) -> None:
        if self._token is None:
            return
        if not isinstance(token, str) or not _same(token, self._token):
            raise Rejected(401, "wrong verification token")

    def _check_signature(self, headers: Mapping[str, str], body: bytes) -> None:
        assert self._key is not None
        timestamp = _header(headers, "X-Lark-Request-Timestamp")
        nonce = _header(headers, "X-Lark-Request-Nonce")
        signature = _header(headers, "X-Lark-Signature")
        if not timestamp or nonce is None or not signature:
            raise Rejected(401, "signature headers missing")
        try:
            sent = float(timestamp)
        except ValueError:
            raise Rejected(401, "timestamp is not a number") from None
        if abs(self._clock() - sent) > self._window:
            raise Rejected(401, f"timestamp {timestamp} outside the {self._window:g} s window")
        if not _same(sign(timestamp, nonce, self._key, body), signature.lower()):
            raise Rejected(401, "signature mismatch")
