"""Block Kit approval cards: buttons, the card once decided, the deny-reason modal."""

from __future__ import annotations

import json

from hotplex_slack.cards import (
    ALLOW_ONCE,
    ALLOW_SESSION,
    DENY,
    approval_blocks,
    deny_modal,
    outcome_blocks,
    reason_of,
)

from hotplex.types import ApprovalOutcome, ApprovalRequest


def request(**changes: object) -> ApprovalRequest:
    fields: dict[str, object] = {
        "permission_id": "perm-1",
        "kind": "tool",
        "session_id": "s1",
        "address": "slack:T1/C1/1.0",
        "tool": "Bash",
        "input": {"command": "rm -rf build <!channel>"},
        "reason": None,
        "scopes": ("once", "session"),
        "approvers": (),
        "created_at": 0.0,
        "expires_at": 60.0,
    }
    fields.update(changes)
    return ApprovalRequest(**fields)  # type: ignore[arg-type]


def buttons(blocks: list[dict[str, object]]) -> list[dict[str, object]]:
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    return actions["elements"]  # type: ignore[return-value]


def test_the_card_has_three_buttons_carrying_the_request() -> None:
    text, blocks = approval_blocks(request())
    assert "Bash" in text
    found = buttons(blocks)
    assert [b["action_id"] for b in found] == [ALLOW_ONCE, ALLOW_SESSION, DENY]
    assert {b["value"] for b in found} == {"perm-1"}
    shown = json.dumps(blocks)
    assert "rm -rf build" in shown and "<!channel>" not in shown


def test_a_request_without_the_session_scope_offers_no_session_button() -> None:
    _, blocks = approval_blocks(request(scopes=("once",)))
    assert [b["action_id"] for b in buttons(blocks)] == [ALLOW_ONCE, DENY]


def test_a_huge_input_stays_within_the_section_limit() -> None:
    _, blocks = approval_blocks(request(input={"command": "x" * 50_000}))
    assert len(blocks[0]["text"]["text"]) <= 3000  # type: ignore[index]


def test_a_prompt_card_shows_the_prompt() -> None:
    text, blocks = approval_blocks(
        request(kind="prompt", tool="prompt", input={"text": "deploy prod"}, reason="rule x")
    )
    assert "prompt" in text
    assert "deploy prod" in json.dumps(blocks) and "rule x" in json.dumps(blocks)


def test_the_decided_card_says_who_and_has_no_buttons() -> None:
    text, blocks = outcome_blocks(request(), ApprovalOutcome("allow", "slack:U9", "session"))
    assert "slack:U9" in text and "this session" in text
    assert not [b for b in blocks if b["type"] == "actions"]
    expired, _ = outcome_blocks(request(), ApprovalOutcome("expired"))
    assert "expired" in expired


def test_the_deny_modal_round_trips_its_metadata_and_reason() -> None:
    view = deny_modal("perm-1", {"channel": "C1", "ts": "2.0"})
    view["state"] = {"values": {"reason": {"reason_input": {"value": "  too risky "}}}}
    metadata, reason = reason_of(view)
    assert metadata == {"permission_id": "perm-1", "channel": "C1", "ts": "2.0"}
    assert reason == "too risky"
    view["state"] = {"values": {"reason": {"reason_input": {"value": ""}}}}
    assert reason_of(view)[1] is None
