from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotplex.address import Address, session_id_for, session_key
from hotplex.errors import AddressError

NS = uuid.UUID("5e4d8a3c-0b6f-5f2e-9a57-6b1f1d9c2a10")


@pytest.mark.parametrize(
    "text",
    ["slack:T01/C02/1700000000.000100", "feishu:tk/oc_x/om_root", "web:default/s1"],
)
def test_parse_round_trips(text: str) -> None:
    assert str(Address.parse(text)) == text


def test_parts() -> None:
    a = Address.parse("slack:T01/C02/1700000000.000100")
    assert (a.platform, a.workspace, a.channel, a.thread) == (
        "slack",
        "T01",
        "C02",
        "1700000000.000100",
    )


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("slackT01/C02", "expected platform:"),
        ("slack:T01", "2 or 3 segments"),
        ("slack:T01/C02/t/x", "2 or 3 segments"),
        ("Slack:T01/C02", "platform"),
        ("slack:T01//t", "channel"),
        ("slack:T 1/C02", "workspace"),
    ],
)
def test_bad_addresses_say_why(text: str, why: str) -> None:
    with pytest.raises(AddressError, match=why):
        Address.parse(text)


def test_session_keys_by_scope() -> None:
    a = Address.parse("slack:T01/C02/171.1")
    assert session_key(a, "thread") == "slack:T01/C02/171.1"
    assert session_key(a, "channel") == "slack:T01/C02"
    assert session_key(a, "user", user="U9") == "slack:T01/@U9"
    with pytest.raises(AddressError):
        session_key(a, "user")


def test_session_id_is_stable_uuid5() -> None:
    first = session_id_for("slack:T01/C02", NS)
    assert first == session_id_for("slack:T01/C02", NS)
    assert uuid.UUID(first).version == 5
    assert first != session_id_for("slack:T01/C03", NS)


segment = st.text(
    alphabet=st.characters(blacklist_categories=("Zs", "Cc", "Zl", "Zp"), blacklist_characters="/"),
    min_size=1,
    max_size=20,
).filter(lambda s: not any(c.isspace() for c in s))


@given(segment, segment, st.none() | segment)
def test_any_valid_segments_round_trip(ws: str, ch: str, th: str | None) -> None:
    a = Address("web", ws, ch, th)
    assert Address.parse(str(a)) == a


@given(st.text(max_size=60))
def test_parser_never_crashes_otherwise(text: str) -> None:
    try:
        Address.parse(text)
    except AddressError:
        pass
