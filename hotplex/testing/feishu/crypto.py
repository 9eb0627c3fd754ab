"""Feishu's event encryption and request signature, as the platform applies them.

Encryption (an Encrypt Key is set on the app): the body becomes ``{"encrypt": "<base64>"}``
where the base64 decodes to a random 16-byte IV followed by the AES-256-CBC ciphertext of the
JSON envelope (PKCS#7 padding), keyed with SHA-256 of the Encrypt Key.

Signature: ``X-Lark-Signature = hex(sha256(timestamp + nonce + encrypt_key + raw body))`` with
the timestamp (seconds) and nonce sent as ``X-Lark-Request-Timestamp`` and
``X-Lark-Request-Nonce``. It is plain SHA-256, not an HMAC.

AES comes from pycryptodome (``Crypto``), which lark-oapi depends on; it is imported only when
something is encrypted, so this module imports without the ``feishu`` extra.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets

__all__ = [
    "NONCE_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "decrypt",
    "encrypt",
    "signature",
    "signed_headers",
]

TIMESTAMP_HEADER = "X-Lark-Request-Timestamp"
NONCE_HEADER = "X-Lark-Request-Nonce"
SIGNATURE_HEADER = "X-Lark-Signature"
_BLOCK = 16


def _key(encrypt_key: str) -> bytes:
    return hashlib.sha256(encrypt_key.encode("utf-8")).digest()


def encrypt(encrypt_key: str, plaintext: str | bytes, *, iv: bytes | None = None) -> str:
    """The base64 ``encrypt`` value for ``plaintext`` (a random IV unless one is given)."""
    from Crypto.Cipher import AES

    data = plaintext.encode("utf-8") if isinstance(plaintext, str) else plaintext
    iv = os.urandom(_BLOCK) if iv is None else iv
    if len(iv) != _BLOCK:
        raise ValueError("the IV must be 16 bytes")
    pad = _BLOCK - len(data) % _BLOCK
    cipher = AES.new(_key(encrypt_key), AES.MODE_CBC, iv)
    return base64.b64encode(iv + cipher.encrypt(data + bytes([pad]) * pad)).decode("ascii")


def decrypt(encrypt_key: str, encrypted: str) -> str:
    """The plaintext of an ``encrypt`` value; ``ValueError`` when it is not one."""
    from Crypto.Cipher import AES

    raw = base64.b64decode(encrypted, validate=True)
    if len(raw) < 2 * _BLOCK or len(raw) % _BLOCK:
        raise ValueError("invalid ciphertext length")
    cipher = AES.new(_key(encrypt_key), AES.MODE_CBC, raw[:_BLOCK])
    padded = cipher.decrypt(raw[_BLOCK:])
    pad = padded[-1]
    if not 1 <= pad <= _BLOCK or padded[-pad:] != bytes([pad]) * pad:
        raise ValueError("invalid PKCS#7 padding")
    return padded[:-pad].decode("utf-8")


def signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """``X-Lark-Signature`` of a request body."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode("utf-8") + body).hexdigest()


def signed_headers(
    encrypt_key: str,
    body: bytes,
    *,
    timestamp: str,
    nonce: str | None = None,
) -> dict[str, str]:
    """The three signature headers Feishu sends with ``body``."""
    nonce = secrets.token_hex(8) if nonce is None else nonce
    return {
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature(timestamp, nonce, encrypt_key, body),
    }
