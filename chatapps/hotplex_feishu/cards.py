"""Feishu cards: the escape that keeps agent text literal, and the card JSON rendered from
the templates in ``templates/feishu/`` (overridable through ``templates.dir``).

Templates emit JSON only through ``tojson``; the result is parsed here (so a broken
override fails loudly, with its name) and serialized compactly without ASCII escapes,
which is what Feishu's 30 KB card limit measures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jinja2

from hotplex.interfaces import approval_outcome_text
from hotplex.records import TemplateSpec
from hotplex.types import ApprovalOutcome, ApprovalRequest

__all__ = [
    "CARD_LIMIT",
    "TEMPLATE_SPEC",
    "CardTemplates",
    "card_json",
    "feishu_escape",
]

#: Where the shipped card templates live: ``feishu/<name>.json.j2``.
TEMPLATE_SPEC = TemplateSpec(name="feishu", package="hotplex.templates", subdir="feishu")
#: Feishu refuses a card larger than 30 KB (UTF-8 bytes of its JSON).
CARD_LIMIT = 30 * 1024

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def feishu_escape(text: str) -> str:
    """Show agent text literally in card markdown: ``<at id=all></at>``, ``<at
    user_id="all">`` and every other tag become plain text, since no ``<`` survives.
    Character by character, as the renderer requires."""
    if not any(ch in text for ch in _ESCAPES):
        return text
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


def card_json(card: Mapping[str, Any]) -> str:
    """The compact JSON Feishu receives (and measures)."""
    return json.dumps(card, ensure_ascii=False, separators=(",", ":"))


def _input_detail(request: ApprovalRequest, escape: Any) -> str:
    if request.kind == "prompt":
        prompt = str(request.input.get("text", "")) if request.input else ""
        return escape(prompt[:2000]) or "(empty prompt)"
    command = request.input.get("command") if request.input else None
    if isinstance(command, str):
        shown = command
    else:
        shown = json.dumps(dict(request.input), ensure_ascii=False, default=str)
    if len(shown) > 2000:
        shown = shown[:2000] + "…"
    return f"**{escape(request.tool)}**: {escape(shown)}"


class CardTemplates:
    """Renders the card templates of one environment (core's ``TEMPLATES`` service, so a
    user's override folder applies)."""

    def __init__(self, env: jinja2.Environment) -> None:
        self._env = env

    def render(self, name: str, **values: Any) -> dict[str, Any]:
        text = self._env.get_template(f"feishu/{name}.json.j2").render(**values)
        try:
            card = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"template feishu/{name}.json.j2 did not render JSON: {exc}") from None
        if not isinstance(card, dict):
            raise ValueError(f"template feishu/{name}.json.j2 did not render a JSON object")
        return card

    def reply(
        self, text: str, *, status: str | None = None, streaming: bool = False
    ) -> dict[str, Any]:
        return self.render("reply", text=text, status=status, streaming=streaming)

    def approval(
        self,
        request: ApprovalRequest,
        outcome: ApprovalOutcome | None = None,
    ) -> dict[str, Any]:
        escape = feishu_escape
        return self.render(
            "approval",
            request=request,
            tool=escape(request.tool),
            detail=_input_detail(request, escape),
            reason=escape(request.reason) if request.reason else None,
            outcome=outcome,
            outcome_line=(
                approval_outcome_text(request, outcome, escape) if outcome is not None else ""
            ),
        )

    def title(self, title: str) -> dict[str, Any]:
        return self.render("title", title=title)
