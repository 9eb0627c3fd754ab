"""Slack's content limits, checked the way the Web API answers them.

Every check raises :class:`ApiError` with Slack's error code (and, for blocks, a
``response_metadata.messages`` entry naming the JSON pointer as Slack does).
"""

from __future__ import annotations

import json
from typing import Any

from hotplex.testing.slack.records import JSON

#: Slack cuts ``text`` beyond this many characters; the fake refuses it (``msg_too_long``).
TEXT_LIMIT = 40_000
#: ``markdown_text`` per call, and all ``markdown`` blocks of one payload together.
MARKDOWN_LIMIT = 12_000
MESSAGE_BLOCKS = 50
MODAL_BLOCKS = 100
SECTION_TEXT = 3_000
SECTION_FIELDS = 10
FIELD_TEXT = 2_000
HEADER_TEXT = 150
ACTIONS_ELEMENTS = 25
CONTEXT_ELEMENTS = 10
BUTTON_TEXT = 75
BUTTON_VALUE = 2_000
ACTION_ID = 255
BLOCK_ID = 255
TABLE_ROWS = 100
MODAL_TITLE = 24
BLOCK_TYPES = frozenset(
    {
        "section",
        "actions",
        "context",
        "divider",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "table",
        "file",
        "video",
        "context_actions",
    }
)
CHUNK_TYPES = frozenset({"markdown_text", "task_update", "plan_update", "blocks"})


class ApiError(Exception):
    """A Web API error: HTTP 200 with ``{"ok": false, "error": code, **extra}``."""

    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra


def _block_error(message: str, pointer: str) -> ApiError:
    return ApiError(
        "invalid_blocks",
        response_metadata={"messages": [f"[ERROR] {message} [json-pointer:{pointer}]"]},
    )


def parse_json_arg(value: Any, name: str) -> Any:
    """A structured argument arrives as a JSON string in a form, as itself in a JSON body."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ApiError(
                "invalid_arguments", response_metadata={"messages": [f"{name}: not JSON"]}
            ) from None
    return value


def check_text(text: Any, *, limit: int = TEXT_LIMIT) -> str:
    if text is None:
        return ""
    if not isinstance(text, str):
        raise ApiError("invalid_arguments")
    if len(text) > limit:
        raise ApiError("msg_too_long")
    return text


def _plain_len(obj: Any) -> int:
    if isinstance(obj, dict):
        text = obj.get("text")
        return len(text) if isinstance(text, str) else 0
    return 0


def _check_element(element: Any, pointer: str) -> None:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        raise _block_error("element must be an object with a type", pointer)
    if element["type"] == "button":
        if _plain_len(element.get("text")) > BUTTON_TEXT:
            raise _block_error(f"must be less than {BUTTON_TEXT + 1} characters", f"{pointer}/text")
        if len(str(element.get("value", ""))) > BUTTON_VALUE:
            raise _block_error(
                f"must be less than {BUTTON_VALUE + 1} characters", f"{pointer}/value"
            )
    if len(str(element.get("action_id", ""))) > ACTION_ID:
        raise _block_error(f"must be less than {ACTION_ID + 1} characters", f"{pointer}/action_id")


def _check_fields(fields: Any, pointer: str) -> None:
    if not isinstance(fields, list) or len(fields) > SECTION_FIELDS:
        raise _block_error(f"no more than {SECTION_FIELDS} items allowed", pointer)
    for index, item in enumerate(fields):
        if _plain_len(item) > FIELD_TEXT:
            raise _block_error(
                f"must be less than {FIELD_TEXT + 1} characters", f"{pointer}/{index}/text"
            )


def _check_block(block: Any, pointer: str) -> int:
    """Validate one block; return the markdown characters it carries."""
    if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
        raise _block_error("unsupported type or not an object", pointer)
    kind = block["type"]
    if len(str(block.get("block_id", ""))) > BLOCK_ID:
        raise _block_error(f"must be less than {BLOCK_ID + 1} characters", f"{pointer}/block_id")
    if kind == "section":
        if "text" not in block and "fields" not in block:
            raise _block_error("must provide text or fields", pointer)
        if _plain_len(block.get("text")) > SECTION_TEXT:
            raise _block_error(
                f"must be less than {SECTION_TEXT + 1} characters", f"{pointer}/text/text"
            )
        _check_fields(block.get("fields", []), f"{pointer}/fields")
    elif kind == "header" and _plain_len(block.get("text")) > HEADER_TEXT:
        raise _block_error(
            f"must be less than {HEADER_TEXT + 1} characters", f"{pointer}/text/text"
        )
    elif kind in ("actions", "context"):
        elements = block.get("elements")
        limit = ACTIONS_ELEMENTS if kind == "actions" else CONTEXT_ELEMENTS
        if not isinstance(elements, list) or not elements:
            raise _block_error("must provide elements", f"{pointer}/elements")
        if len(elements) > limit:
            raise _block_error(f"no more than {limit} items allowed", f"{pointer}/elements")
        for index, element in enumerate(elements):
            _check_element(element, f"{pointer}/elements/{index}")
    elif kind == "markdown":
        text = block.get("text")
        if not isinstance(text, str):
            raise _block_error("must provide text", f"{pointer}/text")
        return len(text)
    elif kind == "table":
        rows = block.get("rows")
        if not isinstance(rows, list) or len(rows) > TABLE_ROWS:
            raise _block_error(f"rows: 1 to {TABLE_ROWS} required", f"{pointer}/rows")
    return 0


def check_blocks(raw: Any, *, limit: int = MESSAGE_BLOCKS) -> list[JSON] | None:
    """Parse and validate ``blocks`` (``None`` when absent)."""
    if raw is None:
        return None
    blocks = parse_json_arg(raw, "blocks")
    if not isinstance(blocks, list):
        raise _block_error("must be an array", "/blocks")
    if len(blocks) > limit:
        raise _block_error(f"no more than {limit} items allowed", "/blocks")
    markdown = 0
    tables = 0
    for index, block in enumerate(blocks):
        markdown += _check_block(block, f"/blocks/{index}")
        tables += 1 if block.get("type") == "table" else 0
    if markdown > MARKDOWN_LIMIT:
        raise ApiError("msg_blocks_too_long")
    if tables > 1:
        raise ApiError("only_one_table_allowed")
    return blocks


def check_chunks(raw: Any) -> tuple[list[JSON], str]:
    """Parse streaming ``chunks``; return them and the markdown text they add."""
    chunks = parse_json_arg(raw, "chunks")
    if not isinstance(chunks, list):
        raise ApiError("invalid_chunks")
    text = []
    for chunk in chunks:
        if not isinstance(chunk, dict) or chunk.get("type") not in CHUNK_TYPES:
            raise ApiError("invalid_chunks")
        if chunk["type"] == "markdown_text":
            if not isinstance(chunk.get("text"), str):
                raise ApiError("invalid_chunks")
            text.append(chunk["text"])
        if chunk["type"] == "blocks":
            check_blocks(chunk.get("blocks"))
    joined = "".join(text)
    if len(joined) > MARKDOWN_LIMIT:
        raise ApiError("msg_too_long")
    return chunks, joined


def check_view(raw: Any) -> JSON:
    view = parse_json_arg(raw, "view")
    if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
        raise ApiError(
            "invalid_arguments", response_metadata={"messages": ["view: type must be modal"]}
        )
    for key in ("title", "submit", "close"):
        if _plain_len(view.get(key)) > MODAL_TITLE:
            raise ApiError(
                "invalid_arguments",
                response_metadata={
                    "messages": [
                        f"[ERROR] must be less than 25 characters [json-pointer:/view/{key}/text]"
                    ]
                },
            )
    if view.get("type") == "modal" and not isinstance(view.get("title"), dict):
        raise ApiError(
            "invalid_arguments", response_metadata={"messages": ["view: title is required"]}
        )
    check_blocks(view.get("blocks", []), limit=MODAL_BLOCKS)
    return view
