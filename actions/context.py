"""Conversation context the answers share: which product, amount, term and method apply.

Slots persist across turns, so a follow-up ("那36期呢?", "换成等额本金") only changes the one
value it names; these helpers read the rest and ask for whatever is still missing.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet

from actions.finance.schedule import METHOD_LABELS
from actions.script import ScriptedDispatcher
from actions.settings import load_settings
from actions.store.dto import ProductInfo

_CN_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}


def cn_number(text: str) -> int | None:
    """'6' / '六' / '十二' / '二十四' -> int (1..99); None if it is not such a number."""
    if text.isdigit():
        return int(text)
    if not text or any(ch not in _CN_DIGITS and ch != "十" for ch in text):
        return None
    if "十" not in text:
        return _CN_DIGITS[text] if len(text) == 1 else None
    tens, _, units = text.partition("十")
    if len(tens) > 1 or len(units) > 1:
        return None
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[units] if units else 0)


_PERIODS_PAID = re.compile(
    r"(?:还了|已还|还满|已经还了|第)\s*([0-9]+|[一二两三四五六七八九十]+)\s*(?:期|个月)"
    r"|([0-9]+|[一二两三四五六七八九十]+)\s*(?:期|个月)\s*(?:后|之后|以后)"
)


def periods_paid(text: str) -> int | None:
    """How many instalments the borrower says are paid before prepaying ("还了6期后")."""
    match = _PERIODS_PAID.search(text)
    if not match:
        return None
    return cn_number(match.group(1) or match.group(2))


def slot_before_latest_message(tracker: Tracker, name: str) -> Any:
    """A slot's value as it was before the latest user message filled it."""
    value: Any = None
    before: Any = None
    for event in tracker.events:
        if event.get("event") == "user":
            before = value
        elif event.get("event") == "slot" and event.get("name") == name:
            value = event.get("value")
    return before


def int_slot(tracker: Tracker, name: str) -> int | None:
    value = tracker.get_slot(name)
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() and number > 0 else None


def amount_slot(tracker: Tracker) -> float | None:
    value = tracker.get_slot("amount")
    try:
        return float(value) if value is not None and float(value) > 0 else None
    except (TypeError, ValueError):
        return None


def inform_payload(**entities: Any) -> str:
    return "/inform" + json.dumps(entities, ensure_ascii=False, separators=(",", ":"))


def ask_product(out: ScriptedDispatcher, repo: Any, topic: str) -> list[EventType]:
    """Ask which product, with one button per product in the store."""
    buttons = [
        {"title": p.name, "payload": inform_payload(product=p.code)} for p in repo.list_products()
    ]
    out.text("请问您想了解哪款产品？", buttons)
    return [SlotSet("topic", topic)]


def resolve_product(tracker: Tracker, repo: Any) -> ProductInfo | None:
    code = tracker.get_slot("product")
    return repo.get_product(str(code)) if code else None


def choose_method(tracker: Tracker, product: ProductInfo) -> tuple[str | None, bool]:
    """(method, assumed): the borrower's method, else the configured default (flagged assumed).

    Returns (None, False) when the borrower named a method this product does not offer.
    """
    method = tracker.get_slot("repayment_method")
    if method:
        return (method, False) if method in product.methods else (None, False)
    default = load_settings().default_method
    return (default if default in product.methods else product.methods[0]), True


def ask_amount(out: ScriptedDispatcher, product: ProductInfo, topic: str,
               prefix: str = "") -> list[EventType]:
    from actions.replies import amount_range_text

    out.text(f"{prefix}请问您打算借多少钱？{product.name}单笔可借{amount_range_text(product)}。")
    return [SlotSet("topic", topic)]


def ask_term(out: ScriptedDispatcher, product: ProductInfo, topic: str,
             prefix: str = "") -> list[EventType]:
    buttons = [{"title": f"{t}期", "payload": inform_payload(term=t)} for t in product.terms]
    out.text(f"{prefix}请问您想分几期还？{product.name}可选期限如下：", buttons)
    return [SlotSet("topic", topic)]


def ask_method(out: ScriptedDispatcher, product: ProductInfo, topic: str,
               chosen: str | None) -> list[EventType]:
    buttons = [
        {"title": METHOD_LABELS[m], "payload": inform_payload(repayment_method=m)}
        for m in product.methods
    ]
    label = METHOD_LABELS.get(chosen or "", "该还款方式")
    named = f"{product.name}暂不支持{label}，" if chosen else ""
    out.text(f"{named}请从以下还款方式中选择：", buttons)
    return [SlotSet("topic", topic)]


def amount_in_range(product: ProductInfo, amount: float) -> bool:
    return float(product.min_amount) <= amount <= float(product.max_amount)


def to_amount(amount: float) -> Decimal:
    """Slots hold floats; the calculators get an exact Decimal (via str, to the fen)."""
    return Decimal(str(amount)).quantize(Decimal("0.01"))
