"""Block Kit for approvals (pure): the card with its buttons, the card once decided, and
the modal that asks a denier for a reason.

Every button's ``value`` is the request's ``permission_id``; the action ids say what the
press decides. Agent-written parts (the tool's input, the WAF's reason) are escaped and cut
to Block Kit's limits (a section's text: 3,000 characters).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hotplex.interfaces import approval_outcome_text
from hotplex.types import ApprovalOutcome, ApprovalRequest
from hotplex_slack.text import slack_escape

__all__ = [
    "ALLOW_ONCE",
    "ALLOW_SESSION",
    "DENY",
    "DENY_REASON_VIEW",
    "approval_blocks",
    "deny_modal",
    "outcome_blocks",
    "reason_of",
]

ALLOW_ONCE = "hotplex_allow_once"
ALLOW_SESSION = "hotplex_allow_session"
DENY = "hotplex_deny"
DENY_REASON_VIEW = "hotplex_deny_reason"
REASON_BLOCK, REASON_INPUT = "reason", "reason_input"
_SECTION = 3000
_SHOWN = 2400  # of the input, leaving room for the headline and the fence


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _headline(request: ApprovalRequest) -> str:
    if request.kind == "prompt":
        return "*Prompt approval needed*: the firewall asks before the agent gets it."
    return f"*Tool approval needed*: `{slack_escape(request.tool)}`"


def _body(request: ApprovalRequest) -> str:
    data: Any = dict(request.input)
    if request.kind == "prompt":
        shown = str(data.get("text", ""))
    elif isinstance(data.get("command"), str):
        shown = data["command"]
    else:
        shown = json.dumps(data, ensure_ascii=False, indent=1, default=str)
    # a fence cannot hold three backticks: break them so the block stays one block
    shown = _cut(shown, _SHOWN).replace("```", "`\u200b``")
    lines = [_headline(request), f"```{slack_escape(shown)}```"]
    if request.reason:
        lines.append(f"_{slack_escape(_cut(request.reason, 300))}_")
    return _cut("\n".join(lines), _SECTION)


def _summary(request: ApprovalRequest) -> str:
    if request.kind == "prompt":
        return "Approval needed: a prompt the firewall asks about"
    return f"Approval needed: {_cut(slack_escape(request.tool), 200)}"


def _button(text: str, action: str, request: ApprovalRequest, style: str | None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action,
        "value": request.permission_id,
        "text": {"type": "plain_text", "text": text},
    }
    if style:
        button["style"] = style
    return button


def approval_blocks(request: ApprovalRequest) -> tuple[str, list[dict[str, Any]]]:
    """The card's fallback text and blocks: what is asked, then Allow once, Allow for this
    session (when the request offers that scope) and Deny (which asks for a reason)."""
    buttons = [_button("Allow once", ALLOW_ONCE, request, "primary")]
    if "session" in request.scopes:
        buttons.append(_button("Allow for this session", ALLOW_SESSION, request, None))
    buttons.append(_button("Deny", DENY, request, "danger"))
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _body(request)}},
        {
            "type": "actions",
            "block_id": f"hotplex_approval:{request.permission_id}",
            "elements": buttons,
        },
    ]
    return _summary(request), blocks


def outcome_blocks(
    request: ApprovalRequest, outcome: ApprovalOutcome
) -> tuple[str, list[dict[str, Any]]]:
    """The card once ended: what was asked and how it ended (who decided, or expired),
    without buttons."""
    line = approval_outcome_text(request, outcome, slack_escape)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _body(request)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(line, _SECTION)}]},
    ]
    return line, blocks


def deny_modal(permission_id: str, card: Mapping[str, str]) -> dict[str, Any]:
    """The modal a Deny press opens: an optional reason the agent receives. Its
    ``private_metadata`` carries the request and where its card is."""
    metadata = json.dumps({"permission_id": permission_id, **card})
    return {
        "type": "modal",
        "callback_id": DENY_REASON_VIEW,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": "Deny"},
        "submit": {"type": "plain_text", "text": "Deny"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "optional": True,
                "label": {"type": "plain_text", "text": "Reason (the agent is told)"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "max_length": 1000,
                },
            }
        ],
    }


def reason_of(view: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The metadata and the reason (None when left empty) of a submitted deny modal."""
    try:
        metadata = json.loads(str(view.get("private_metadata") or "{}"))
    except ValueError:
        metadata = {}
    values = view.get("state", {}).get("values", {})
    value = values.get(REASON_BLOCK, {}).get(REASON_INPUT, {}).get("value")
    reason = value.strip() if isinstance(value, str) and value.strip() else None
    return (metadata if isinstance(metadata, dict) else {}), reason
