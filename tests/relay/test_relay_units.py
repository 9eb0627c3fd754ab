"""Fast checks of the relay's parts: signing and the nonce store, the loop guard, the rate
limit, the circuit breaker, and how a cut answer is marked."""

from __future__ import annotations

import pytest
from hotplex_relay.guard import Breaker, Hop, RateLimit, chain_problem, parse_chain
from hotplex_relay.signing import NonceStore, Rejected, StreamMac, signed_headers, verify
from hotplex_relay.wire import Reception
from hypothesis import given
from hypothesis import strategies as st

SECRET = b"s3cret"


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def check(headers: dict[str, str], body: bytes, nonces: NonceStore, path: str = "/relay/v1/ask"):
    return verify(
        headers, method="POST", path=path, body=body,
        secret_for={"a": SECRET}.get, nonces=nonces,
    )  # fmt: skip


def test_a_signed_request_verifies_once() -> None:
    clock = Clock()
    nonces = NonceStore(300, clock=clock)
    headers = signed_headers(
        SECRET, sender="a", method="POST", path="/relay/v1/ask", body=b"{}", clock=clock
    )
    assert check(headers, b"{}", nonces).sender == "a"
    with pytest.raises(Rejected, match="already used"):
        check(headers, b"{}", nonces)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda h: h.pop("X-Relay-Signature"), "unsigned"),
        (lambda h: h.update({"X-Relay-Peer": "z"}), "unknown peer"),
        (
            lambda h: h.update({"X-Relay-Timestamp": str(int(h["X-Relay-Timestamp"]) + 1)}),
            "bad signature",
        ),
        (lambda h: h.update({"X-Relay-Nonce": "0" * 32}), "bad signature"),
        (lambda h: h.update({"X-Relay-Nonce": "xyz"}), "malformed nonce"),
    ],
)
def test_a_changed_header_is_rejected(change, says: str) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    headers = signed_headers(
        SECRET, sender="a", method="POST", path="/relay/v1/ask", body=b"{}", clock=clock
    )
    change(headers)
    with pytest.raises(Rejected, match=says):
        check(headers, b"{}", NonceStore(300, clock=clock))


def test_the_body_the_path_and_the_key_are_covered() -> None:
    clock = Clock()
    headers = signed_headers(
        SECRET, sender="a", method="POST", path="/relay/v1/ask", body=b"{}", clock=clock
    )
    with pytest.raises(Rejected, match="bad signature"):
        check(headers, b'{"x":1}', NonceStore(300, clock=clock))
    with pytest.raises(Rejected, match="bad signature"):
        check(headers, b"{}", NonceStore(300, clock=clock), path="/relay/v1/other")
    other = signed_headers(
        b"other", sender="a", method="POST", path="/relay/v1/ask", body=b"{}", clock=clock
    )
    with pytest.raises(Rejected, match="bad signature"):
        check(other, b"{}", NonceStore(300, clock=clock))


def test_the_replay_window_and_a_restart() -> None:
    clock = Clock()
    nonces = NonceStore(300, clock=clock)
    old = signed_headers(
        SECRET,
        sender="a",
        method="POST",
        path="/relay/v1/ask",
        body=b"",
        clock=Clock(clock.now),
    )
    clock.now += 301
    with pytest.raises(Rejected, match="replay window"):
        check(old, b"", nonces)
    restarted = NonceStore(300, clock=clock)  # a fresh store refuses what was signed before it
    with pytest.raises(Rejected, match="before this instance started"):
        check(old, b"", restarted)


def test_the_nonce_store_forgets_only_after_the_window_and_stays_bounded() -> None:
    clock = Clock()
    nonces = NonceStore(10, max_entries=3, clock=clock)
    for i in range(3):
        nonces.check(f"{i:032x}", int(clock.now))
    with pytest.raises(Rejected, match="too many"):
        nonces.check("f" * 32, int(clock.now))
    clock.now += 19
    with pytest.raises(Rejected, match="already used"):
        nonces.check(f"{0:032x}", int(clock.now) - 9)  # still inside: remembered
    clock.now += 2
    nonces.check("e" * 32, int(clock.now))
    assert len(nonces) == 1


def test_the_answer_mac_is_bound_to_the_request() -> None:
    one, two = StreamMac(SECRET, "n1"), StreamMac(SECRET, "n2")
    for mac in (one, two):
        mac.update(b'{"type":"accepted"}\n')
    assert not one.matches(two.hexdigest())
    assert one.matches(StreamMac(SECRET, "n1").hexdigest()) is False  # lines count too


@given(st.lists(st.sampled_from("abcde"), min_size=1, max_size=8), st.sampled_from("abcdef"))
def test_the_loop_guard(peers: list[str], target: str) -> None:
    chain = [Hop(p, f"x:{p}/c") for p in peers]
    problem = chain_problem(chain, target=target, hop_limit=3)
    if target in peers:
        assert problem is not None and problem.startswith(f"loop: {target}")
    elif len(peers) > 3:
        assert problem is not None and problem.startswith("hop limit")
    else:
        assert problem is None


def test_a_chain_must_be_well_formed() -> None:
    assert parse_chain([{"peer": "a", "conversation": "c"}]) == (Hop("a", "c"),)
    for bad in ([], "a", [{"peer": "a"}], [{"peer": "", "conversation": "c"}], [1]):
        with pytest.raises(ValueError):
            parse_chain(bad)


def test_the_rate_limit() -> None:
    clock = Clock()
    limit = RateLimit(2.0, 3, clock=clock)
    assert [limit.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit.take() == pytest.approx(0.5)
    clock.now += 0.5
    assert limit.take() == 0.0
    assert limit.take() > 0


def test_the_breaker_opens_then_lets_one_trial_through() -> None:
    clock = Clock()
    breaker = Breaker(2, 30, clock=clock)
    breaker.failed("refused")
    assert breaker.allow() == 0.0 and breaker.state == "closed"
    breaker.failed("refused")
    assert breaker.state == "open" and breaker.allow() == pytest.approx(30)
    clock.now += 30
    assert breaker.allow() == 0.0  # the trial
    assert breaker.allow() > 0  # only one
    breaker.failed("still refused")
    assert breaker.state == "open"
    clock.now += 30
    assert breaker.allow() == 0.0
    breaker.succeeded()
    assert breaker.state == "closed" and breaker.health()["consecutive_failures"] == 0


def _line(kind: str, **data: object) -> dict[str, object]:
    return {"type": "event", "event": {"type": kind, "data": data}}


def test_a_cut_answer_keeps_its_text_and_is_marked_incomplete() -> None:
    reception = Reception("b")
    shown = [e for line in (_line("text_delta", text="half "), _line("text_delta", text="an"))
             for e in reception.feed(line)]  # fmt: skip
    assert [e.data["text"] for e in shown] == ["**b:** half ", "an"]
    closing = reception.cut("the connection to b ended before the answer did")
    assert [e.type for e in closing] == ["text", "text", "done"]
    assert closing[0].data["text"] == "**b:** half an"
    assert "INCOMPLETE answer from b" in closing[1].data["text"]
    assert closing[-1].data["status"] == "error"
    assert reception.answer.complete is False
    assert "INCOMPLETE" in reception.answer.summary()


def test_a_refused_tool_is_reported_to_the_asker() -> None:
    reception = Reception("b")
    for line in (
        _line("tool_use", name="Bash"),
        _line("tool_result", is_error=True, output="this session is unattended (policy: deny)"),
        _line("text", text="I could not run it."),
    ):
        reception.feed(line)
    events = reception.finish("ok")
    assert reception.answer.complete
    assert any("b refused or failed: Bash: this session is unattended" in str(e.data.get("text"))
               for e in events)  # fmt: skip
    assert "[b refused or failed: Bash" in reception.answer.summary()


def test_a_refusal_is_said_in_the_conversation() -> None:
    reception = Reception("b")
    events = reception.finish("refused", "The WAF blocked this prompt (delete.root).")
    texts = [str(e.data["text"]) for e in events if e.type == "text"]
    assert texts == ["⚠️ b refused the request: The WAF blocked this prompt (delete.root)."]
    assert events[-1].data["status"] == "error"
    assert not reception.answer.complete


@pytest.mark.parametrize(
    ("section", "says"),
    [
        ({"name": "a", "peers": [{"name": "b", "url": "u", "secret": "short"}]}, "too short"),
        ({"peers": [{"name": "b", "url": "u", "secret": "x" * 16}]}, "set this instance's"),
        (
            {"name": "a", "peers": [{"name": "b", "url": "u", "secret": "x" * 16}] * 2},
            "each peer needs its own name",
        ),
        ({"name": "b", "peers": [{"name": "b", "url": "u", "secret": "x" * 16}]}, "also a peer"),
    ],
)
def test_the_config_section_refuses_what_cannot_work(section: dict[str, object], says: str) -> None:
    import yaml
    from hotplex_relay.plugin import hotplex_add_config

    from hotplex.config import load_settings
    from hotplex.errors import ConfigError

    text = yaml.safe_dump({"plugins": {"relay": section}})
    with pytest.raises(ConfigError, match=says) as raised:
        load_settings(None, text=text, sections=[hotplex_add_config()], environ={})
    assert "x" * 16 not in str(raised.value)  # never the secret


def test_an_answer_past_the_limit_is_refused() -> None:
    from hotplex_relay.wire import MAX_ANSWER

    reception = Reception("b")
    reception.feed(_line("text_delta", text="x" * MAX_ANSWER))
    with pytest.raises(ValueError, match="longer than"):
        reception.feed(_line("text", text="y"))
    assert reception.feed({"type": "event", "event": {"type": "text", "data": [1]}}) == []
