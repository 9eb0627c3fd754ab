"""Slack's request signing (v0): what Slack adds to every HTTP request it sends an app.

``X-Slack-Signature: v0=<hex>`` with hex = HMAC-SHA256(signing secret, ``"v0:<ts>:<raw body>"``)
and ``X-Slack-Request-Timestamp: <ts>`` (Unix seconds). slack-sdk's ``SignatureVerifier``
accepts these (tests/testing/test_fake_slack_signing.py checks it).
"""

from __future__ import annotations

import hashlib
import hmac
import time


def signature(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, *, timestamp: float | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if timestamp is None else timestamp))
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature(secret, stamp, body)}
