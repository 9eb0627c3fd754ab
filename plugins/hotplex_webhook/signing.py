"""Signatures: Standard Webhooks (outbound and inbound) and GitHub's ``X-Hub-Signature-256``.

Standard Webhooks signs ``{webhook-id}.{webhook-timestamp}.{body}`` with HMAC-SHA256 under
the base64-decoded part of a ``whsec_`` secret; ``webhook-signature`` is a space-separated
list of ``v1,<base64>``, one per secret during a rotation. GitHub signs the body alone:
``sha256=<hex>`` under the secret's bytes. Comparisons are constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence

__all__ = [
    "SignatureError",
    "sign_standard",
    "standard_headers",
    "verify_github",
    "verify_standard",
]


class SignatureError(Exception):
    """The request's signature is missing, malformed, stale or wrong (the reason is safe to
    log: it never contains a secret)."""


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_") + "==")


def sign_standard(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` of ``id.timestamp.body``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def standard_headers(
    secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every secret (rotation)."""
    if "." in msg_id:
        raise ValueError("a webhook-id may not contain '.'")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign_standard(s, msg_id, timestamp, body) for s in secrets),
    }


def verify_standard(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float, tolerance: float
) -> str:
    """The verified ``webhook-id``; SignatureError otherwise (also for a timestamp more than
    ``tolerance`` seconds away from ``now``: a replayed old request)."""
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (msg_id and stamp and signatures):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not an integer") from None
    if abs(now - timestamp) > tolerance:
        raise SignatureError("webhook-timestamp is outside the replay window")
    expected = sign_standard(secret, msg_id, timestamp, body).encode()
    if not any(hmac.compare_digest(expected, given.encode()) for given in signatures.split(" ")):
        raise SignatureError("no matching signature")
    return msg_id


def verify_github(secret: str, headers: Mapping[str, str], body: bytes) -> str:
    """The verified ``X-GitHub-Delivery`` id; SignatureError otherwise."""
    given = headers.get("X-Hub-Signature-256", "")
    delivery = headers.get("X-GitHub-Delivery", "")
    if not given.startswith("sha256="):
        raise SignatureError("missing X-Hub-Signature-256: sha256=<hex>")
    if not delivery:
        raise SignatureError("missing X-GitHub-Delivery")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise SignatureError("no matching signature")
    return delivery
