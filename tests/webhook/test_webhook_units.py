"""The webhook plugin's parts on their own: signatures against the ``standardwebhooks``
reference, Retry-After and the back-off schedule, the address guard with a resolver stub,
and the config's checks."""

from __future__ import annotations

import random
import socket
from datetime import UTC, datetime

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from hotplex_webhook.attempt import next_delay, retry_after
from hotplex_webhook.config import WebhookSettings
from hotplex_webhook.guard import BlockedAddressError, GuardedResolver, check_host, is_public
from hotplex_webhook.signing import (
    SignatureError,
    sign_standard,
    standard_headers,
    verify_github,
    verify_standard,
)
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook
from webhook_kit import OLD_SECRET, SECRET

# -- signatures ------------------------------------------------------------------------


@given(body=st.binary(max_size=512), msg_id=st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True))
def test_our_signature_verifies_with_the_reference(body: bytes, msg_id: str) -> None:
    now = int(datetime.now(UTC).timestamp())
    headers = standard_headers([OLD_SECRET, SECRET], msg_id, now, body)
    for secret in (SECRET, OLD_SECRET):  # either side of a rotation verifies
        Webhook(secret).verify(body, headers, json_parse=False)
    assert len(headers["webhook-signature"].split(" ")) == 2


def test_the_reference_signature_verifies_with_ours() -> None:
    stamp = datetime.now(UTC)
    body = b'{"a":1}'
    reference = Webhook(SECRET).sign("msg_1", stamp, body)
    assert reference == sign_standard(SECRET, "msg_1", int(stamp.timestamp()), body)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": f"v1,bm90IGl0 {reference}",
    }
    now = stamp.timestamp()
    assert verify_standard(SECRET, headers, body, now=now, tolerance=300) == "msg_1"
    with pytest.raises(SignatureError, match="no matching"):
        verify_standard(OLD_SECRET, headers, body, now=now, tolerance=300)
    with pytest.raises(SignatureError, match="replay window"):
        verify_standard(SECRET, headers, body, now=now + 301, tolerance=300)
    with pytest.raises(SignatureError, match="missing"):
        verify_standard(SECRET, {}, body, now=now, tolerance=300)
    with pytest.raises(ValueError, match="may not contain"):
        standard_headers([SECRET], "a.b", 1, body)


def test_github_signatures() -> None:
    import hashlib
    import hmac

    body = b'{"zen":"Keep it logically awesome."}'
    good = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature-256": good, "X-GitHub-Delivery": "d-1"}
    assert verify_github("s3cret", headers, body) == "d-1"
    with pytest.raises(SignatureError):
        verify_github("other", headers, body)
    with pytest.raises(SignatureError):
        verify_github("s3cret", {**headers, "X-Hub-Signature-256": good[7:]}, body)
    with pytest.raises(SignatureError, match="X-GitHub-Delivery"):
        verify_github("s3cret", {"X-Hub-Signature-256": good}, body)


# -- retries ---------------------------------------------------------------------------


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after("120", 0) == 120.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412460.0) == 20.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412500.0) == 0.0
    assert retry_after("soon", 0) is None
    assert retry_after(None, 0) is None


def test_back_off_follows_the_schedule_with_jitter_then_gives_up() -> None:
    rng = random.Random(7)
    schedule = (5.0, 300.0)
    delays = [next_delay(schedule, 1, rng=rng) for _ in range(200)]
    assert all(d is not None and 4.0 <= d <= 6.0 for d in delays)
    assert len({round(d or 0, 6) for d in delays}) > 100  # jittered
    second = next_delay(schedule, 2, rng=rng)
    assert second is not None and 240.0 <= second <= 360.0
    assert next_delay(schedule, 3, rng=rng) is None


# -- the address guard -----------------------------------------------------------------


class StubResolver(AbstractResolver):
    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.1.1",
        "172.16.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ],
)
async def test_non_public_addresses_are_refused_when_resolved(address: str) -> None:
    assert not is_public(address)
    guard = GuardedResolver(allow_private=False, inner=StubResolver(address))
    with pytest.raises(BlockedAddressError):
        await guard.resolve("rebinding.example", 443)
    allowed = GuardedResolver(allow_private=True, inner=StubResolver(address))
    assert [r["host"] for r in await allowed.resolve("rebinding.example", 443)] == [address]


async def test_only_the_public_addresses_of_a_name_are_kept() -> None:
    guard = GuardedResolver(allow_private=False, inner=StubResolver("10.0.0.1", "93.184.216.34"))
    assert [r["host"] for r in await guard.resolve("mixed.example", 443)] == ["93.184.216.34"]


def test_literal_addresses_are_checked_before_connecting() -> None:
    with pytest.raises(BlockedAddressError):
        check_host("127.0.0.1", allow_private=False)
    with pytest.raises(BlockedAddressError):
        check_host("[::1]", allow_private=False)
    check_host("127.0.0.1", allow_private=True)
    check_host("93.184.216.34", allow_private=False)
    check_host("hooks.example.com", allow_private=False)  # a name: checked when resolved


# -- config ----------------------------------------------------------------------------


def settings(**raw: object) -> WebhookSettings:
    return WebhookSettings.model_validate(raw)


def test_config_checks() -> None:
    sub = {"url": "https://hooks.example.com/x", "secret": SECRET}
    parsed = settings(subscriptions=[sub])
    assert parsed.subscriptions[0].name.startswith("sub-")  # named from its URL
    assert parsed.subscriptions[0].events == ("*",)
    with pytest.raises(ValidationError, match="whsec_"):
        settings(subscriptions=[{**sub, "secret": "plain"}])
    with pytest.raises(ValidationError, match="16 bytes"):
        settings(subscriptions=[{**sub, "secret": "whsec_YWJj"}])
    with pytest.raises(ValidationError, match="http"):
        settings(subscriptions=[{**sub, "url": "ftp://x/y"}])
    with pytest.raises(ValidationError, match="two subscriptions"):
        settings(subscriptions=[{**sub, "name": "a"}, {**sub, "name": "a"}])
    trigger = {"name": "gh", "scheme": "github", "secret": "x", "prompt": "p"}
    assert settings(inbound=[trigger]).inbound[0].policy == "deny"
    with pytest.raises(ValidationError, match="whsec_"):
        settings(inbound=[{**trigger, "scheme": "standard"}])
    with pytest.raises(ValidationError):
        settings(inbound=[{**trigger, "deliver_to": "not an address"}])
    with pytest.raises(ValidationError, match="trigger name"):
        settings(inbound=[{**trigger, "name": "Bad Name"}])


def test_the_lazy_admin_routes_match_their_handlers() -> None:
    from hotplex_webhook.admin import ADMIN_HANDLERS
    from hotplex_webhook.plugin import ADMIN_ROUTES

    assert [(m, p) for m, p, _ in ADMIN_HANDLERS] == list(ADMIN_ROUTES)
