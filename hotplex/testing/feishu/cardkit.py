"""CardKit v1 card entities with Feishu's rules: JSON 2.0 only, one strictly increasing
``sequence`` per card across every operation, ``uuid`` idempotence, at most 10 operations per
second per card, text streaming only while ``streaming_mode`` is on (which closes by itself
10 minutes after it was opened), 30 KB and 200 elements per card."""

from __future__ import annotations

import copy
import json
import secrets
from typing import Any

from hotplex.testing.feishu import limits as codes
from hotplex.testing.feishu.limits import FeishuError, RateWindow
from hotplex.testing.feishu.models import CardEntity, CardOp, card_elements, loads_object
from hotplex.testing.feishu.store import Store

__all__ = ["CardKit"]

JSON = dict[str, Any]
_DAY = 86400.0
_MAX_SEQUENCE = 2**31 - 1
_TEXT_TAGS = ("markdown", "plain_text")
_MAX_TEXT = 100_000


class CardKit:
    """The card operations; each returns the answer's ``data``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._rate = RateWindow(store.limits.card_ops_per_second)
        self._timed_out: set[str] = set()

    def create(self, body: JSON) -> JSON:
        if body.get("type") != "card_json":
            raise FeishuError(codes.INVALID_PARAM, "type must be card_json")
        card = self._checked_card(body.get("data"))
        now = self.store.clock()
        card_id = str(7_000_000_000_000_000_000 + secrets.randbelow(10**18))
        entity = CardEntity(card_id, card, now)
        entity.history.append(CardOp("card.create", None, now))
        if entity.streaming_mode:
            entity.streaming_opened = now
        self.store.cards[card_id] = entity
        return {"card_id": card_id}

    def content(self, card_id: str, element_id: str, body: JSON) -> JSON:
        def apply(card: CardEntity) -> None:
            self._check_streaming(card)
            element = self._element(card, element_id)
            if element.get("tag") not in _TEXT_TAGS:
                raise FeishuError(codes.NOT_TEXT_ELEMENT, "the element is not text or markdown")
            text = body.get("content")
            if not isinstance(text, str) or not 1 <= len(text) <= _MAX_TEXT:
                raise FeishuError(codes.INVALID_PARAM, "content must hold 1 to 100000 characters")
            element["content"] = text

        return self._operate(
            card_id, "card_element.content", body, apply, element_id, body.get("content")
        )

    def settings(self, card_id: str, body: JSON) -> JSON:
        settings = loads_object(body.get("settings"))
        if settings is None:
            raise FeishuError(codes.INVALID_PARAM, "settings must be a JSON object in a string")

        def apply(card: CardEntity) -> None:
            config = settings.get("config")
            if isinstance(config, dict):
                was_streaming = card.streaming_mode
                merged = {**(card.card.get("config") or {}), **config}
                self._check_config(merged)
                card.card["config"] = merged
                self._streaming_changed(card, was_streaming)
            if "card_link" in settings:
                card.card["card_link"] = settings["card_link"]

        return self._operate(card_id, "card.settings", body, apply)

    def update(self, card_id: str, body: JSON) -> JSON:
        wrapper = body.get("card")
        if not isinstance(wrapper, dict) or wrapper.get("type") != "card_json":
            raise FeishuError(codes.INVALID_PARAM, "card must be {type: card_json, data}")
        new = self._checked_card(wrapper.get("data"))

        def apply(card: CardEntity) -> None:
            was_streaming = card.streaming_mode
            card.card = new
            self._streaming_changed(card, was_streaming)

        return self._operate(card_id, "card.update", body, apply)

    def add_elements(self, card_id: str, body: JSON) -> JSON:
        elements = _json_list(body.get("elements"))
        where, target = body.get("type", "append"), body.get("target_element_id")

        def apply(card: CardEntity) -> None:
            if where == "append":
                container, index = _body_elements(card.card), None
            else:
                container, index = self._locate(card, str(target))
                index += 1 if where == "insert_after" else 0
            if index is None:
                container.extend(elements)
            else:
                container[index:index] = elements
            self._check_whole(card.card)

        if where not in ("append", "insert_before", "insert_after"):
            raise FeishuError(codes.INVALID_PARAM, f"invalid type {where!r}")
        return self._operate(card_id, "card_element.create", body, apply)

    def replace_element(self, card_id: str, element_id: str, body: JSON) -> JSON:
        element = loads_object(body.get("element"))
        if element is None:
            raise FeishuError(codes.INVALID_PARAM, "element must be a JSON object in a string")

        def apply(card: CardEntity) -> None:
            container, index = self._locate(card, element_id)
            container[index] = {**element, "element_id": element_id}
            self._check_whole(card.card)

        return self._operate(card_id, "card_element.update", body, apply, element_id)

    def patch_element(self, card_id: str, element_id: str, body: JSON) -> JSON:
        partial = loads_object(body.get("partial_element"))
        if partial is None:
            raise FeishuError(codes.INVALID_PARAM, "partial_element must be a JSON object")

        def apply(card: CardEntity) -> None:
            element = self._element(card, element_id)
            element.update({k: v for k, v in partial.items() if k != "element_id"})
            self._check_whole(card.card)

        return self._operate(card_id, "card_element.patch", body, apply, element_id)

    def delete_element(self, card_id: str, element_id: str, body: JSON) -> JSON:
        def apply(card: CardEntity) -> None:
            container, index = self._locate(card, element_id)
            del container[index]

        return self._operate(card_id, "card_element.delete", body, apply, element_id)

    # --- the shared rules -----------------------------------------------------------------

    def _operate(
        self,
        card_id: str,
        name: str,
        body: JSON,
        apply: Any,
        element_id: str | None = None,
        text: Any = None,
    ) -> JSON:
        card = self.store.cards.get(card_id)
        if card is None:
            raise FeishuError(codes.CARD_NOT_FOUND, f"card {card_id} not found")
        now = self.store.clock()
        if now - card.created > self.store.limits.card_entity_days * _DAY:
            raise FeishuError(codes.CARD_EXPIRED, "card entity expired")
        self._close_if_timed_out(card)
        uuid = body.get("uuid")
        signature = f"{name}:{element_id}"
        if isinstance(uuid, str) and uuid in card.uuids:
            if card.uuids[uuid] != signature:
                raise FeishuError(codes.UUID_REUSED, "uuid reused for another operation")
            return {}
        sequence = body.get("sequence")
        if not isinstance(sequence, int) or isinstance(sequence, bool):
            raise FeishuError(codes.INVALID_PARAM, "sequence must be an integer")
        if not 1 <= sequence <= _MAX_SEQUENCE:
            raise FeishuError(codes.INVALID_PARAM, "sequence must be within 1..2147483647")
        if sequence <= card.sequence:
            raise FeishuError(
                codes.SEQUENCE_NOT_INCREASING,
                f"sequence {sequence} is not above the card's last sequence {card.sequence}",
            )
        if not self._rate.hit(card_id, now):
            raise FeishuError(codes.RATE_LIMITED, "card entity operated too frequently")
        before = copy.deepcopy(card.card)
        try:
            apply(card)
        except FeishuError:
            card.card = before
            raise
        card.sequence = sequence
        if isinstance(uuid, str) and uuid:
            card.uuids[uuid] = signature
        card.history.append(
            CardOp(name, sequence, now, element_id, text if isinstance(text, str) else None)
        )
        return {}

    def _close_if_timed_out(self, card: CardEntity) -> None:
        opened = card.streaming_opened
        limit = self.store.limits.streaming_seconds
        if card.streaming_mode and opened is not None and self.store.clock() - opened >= limit:
            card.card.setdefault("config", {})["streaming_mode"] = False
            card.streaming_opened = None
            self._timed_out.add(card.card_id)

    def _check_streaming(self, card: CardEntity) -> None:
        if card.card_id in self._timed_out:
            raise FeishuError(codes.STREAMING_TIMEOUT, "Card streaming timeout")
        if not card.streaming_mode:
            raise FeishuError(codes.STREAMING_CLOSED, "the card is not in streaming mode")

    def _streaming_changed(self, card: CardEntity, was_streaming: bool) -> None:
        if card.streaming_mode and not was_streaming:
            card.streaming_opened = self.store.clock()
            self._timed_out.discard(card.card_id)
        elif not card.streaming_mode:
            card.streaming_opened = None
            self._timed_out.discard(card.card_id)

    def _element(self, card: CardEntity, element_id: str) -> JSON:
        element = card.element(element_id)
        if element is None:
            raise FeishuError(codes.ELEMENT_NOT_FOUND, f"element {element_id} not found")
        return element

    def _locate(self, card: CardEntity, element_id: str) -> tuple[list[Any], int]:
        found = _container_of(card.card, element_id)
        if found is None:
            raise FeishuError(codes.ELEMENT_NOT_FOUND, f"element {element_id} not found")
        return found

    def _checked_card(self, data: Any) -> JSON:
        card = loads_object(data)
        if card is None:
            raise FeishuError(codes.CARD_PARSE_FAILED, "card data must be card JSON in a string")
        self._check_whole(card)
        return card

    def _check_whole(self, card: JSON) -> None:
        if card.get("schema") != "2.0":
            raise FeishuError(codes.SCHEMA_NOT_2, "only card JSON 2.0 is supported")
        self._check_config(card.get("config") or {})
        ids = [e["element_id"] for e in card_elements(card) if "element_id" in e]
        if len(ids) != len(set(ids)):
            raise FeishuError(codes.ELEMENT_ID_DUPLICATE, "element_id must be unique in a card")
        if sum(1 for _ in card_elements(card)) > self.store.limits.card_elements:
            raise FeishuError(codes.TOO_MANY_ELEMENTS, "too many elements in the card")
        size = len(json.dumps(card, ensure_ascii=False).encode("utf-8"))
        if size > self.store.limits.card_bytes:
            raise FeishuError(codes.CARD_TOO_LARGE, f"the card is {size} bytes")

    @staticmethod
    def _check_config(config: JSON) -> None:
        if config.get("update_multi") is False:
            raise FeishuError(codes.UPDATE_MULTI_FALSE, "update_multi must not be false")


def _json_list(text: Any) -> list[Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise FeishuError(
            codes.INVALID_PARAM, "elements must be a JSON array of objects in a string"
        )
    return value


def _body_elements(card: JSON) -> list[Any]:
    body = card.setdefault("body", {})
    elements = body.setdefault("elements", [])
    if not isinstance(elements, list):
        raise FeishuError(codes.INVALID_PARAM, "card body has no element list")
    return elements


def _container_of(node: Any, element_id: str) -> tuple[list[Any], int] | None:
    if isinstance(node, dict):
        for value in node.values():
            found = _container_of(value, element_id)
            if found is not None:
                return found
    elif isinstance(node, list):
        for index, item in enumerate(node):
            if isinstance(item, dict) and item.get("element_id") == element_id:
                return node, index
            found = _container_of(item, element_id)
            if found is not None:
                return found
    return None
