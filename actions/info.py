"""ask_limit, ask_eligibility, ask_overdue, and bare follow-ups (intent inform).

Product-specific answers come from the store; a verified borrower also gets their own limit
or overdue status.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet

from actions.common import LoanAction, current_repository
from actions.context import ask_product, resolve_product
from actions.rate import rate_answer
from actions.repayment import REPAYMENT_TOPICS, repayment_answer
from actions.replies import (
    eligibility_text,
    limit_text,
    overdue_text,
    own_limit_text,
    own_overdue_text,
)
from actions.script import ScriptedDispatcher

VERIFY_HINT = "如需查询您本人的{what}，请先发送“查询申请进度”完成身份核验。"


def _verified_borrower(tracker: Tracker) -> str | None:
    borrower = tracker.get_slot("borrower_id")
    return str(borrower) if tracker.get_slot("verified") and borrower else None


def limit_answer(out: ScriptedDispatcher, tracker: Tracker) -> list[EventType]:
    repo = current_repository()
    product = resolve_product(tracker, repo)
    borrower_id = _verified_borrower(tracker)
    parts: list[str] = []
    if borrower_id:
        borrower = repo.get_borrower(borrower_id)
        if borrower is not None:
            parts.append(own_limit_text(borrower))
    if product is not None:
        parts.append(limit_text(product))
    if not parts:
        return ask_product(out, repo, "limit")
    if not borrower_id:
        parts.append(VERIFY_HINT.format(what="可用额度"))
    out.text("\n".join(parts))
    return [SlotSet("topic", "limit")]


def eligibility_answer(out: ScriptedDispatcher, tracker: Tracker) -> list[EventType]:
    repo = current_repository()
    product = resolve_product(tracker, repo)
    if product is None:
        return ask_product(out, repo, "eligibility")
    out.text(eligibility_text(product))
    return [SlotSet("topic", "eligibility")]


def overdue_answer(out: ScriptedDispatcher, tracker: Tracker) -> list[EventType]:
    repo = current_repository()
    product = resolve_product(tracker, repo)
    borrower_id = _verified_borrower(tracker)
    parts: list[str] = []
    if borrower_id:
        loans = repo.loans_for_borrower(borrower_id)
        parts.append(own_overdue_text(loans))
        if product is None:
            overdue = [loan for loan in loans if loan.is_overdue] or loans
            product = repo.get_product(overdue[0].product_code) if overdue else None
    if product is None:
        if parts:
            out.text("\n".join(parts))
            return [SlotSet("topic", "overdue")]
        return ask_product(out, repo, "overdue")
    lpr = repo.current_lpr() if product.rate_type == "lpr" else None
    parts.append(overdue_text(product, product.annual_rate(lpr)))
    if not borrower_id:
        parts.append(VERIFY_HINT.format(what="逾期情况"))
    out.text("\n".join(parts))
    return [SlotSet("topic", "overdue")]


class ActionAnswerLimit(LoanAction):
    resets_unresolved = True

    def name(self) -> str:
        return "action_answer_limit"

    def respond(
        self, out: ScriptedDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        return limit_answer(out, tracker)


class ActionAnswerEligibility(LoanAction):
    resets_unresolved = True

    def name(self) -> str:
        return "action_answer_eligibility"

    def respond(
        self, out: ScriptedDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        return eligibility_answer(out, tracker)


class ActionAnswerOverdue(LoanAction):
    resets_unresolved = True

    def name(self) -> str:
        return "action_answer_overdue"

    def respond(
        self, out: ScriptedDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        return overdue_answer(out, tracker)


MENU_BUTTONS = [
    {"title": "利率", "payload": "/ask_rate"},
    {"title": "还款计划", "payload": "/ask_repayment"},
    {"title": "额度", "payload": "/ask_limit"},
    {"title": "申请条件", "payload": "/ask_eligibility"},
    {"title": "逾期规则", "payload": "/ask_overdue"},
]


class ActionHandleInform(LoanAction):
    """A bare value ("36期", "信用贷", a button) answers the question of the current topic."""

    resets_unresolved = True

    def name(self) -> str:
        return "action_handle_inform"

    def respond(
        self, out: ScriptedDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        topic = tracker.get_slot("topic")
        if topic == "rate":
            return rate_answer(out, tracker)
        if topic in REPAYMENT_TOPICS:
            return repayment_answer(out, tracker, follow_up=True)
        if topic == "limit":
            return limit_answer(out, tracker)
        if topic == "eligibility":
            return eligibility_answer(out, tracker)
        if topic == "overdue":
            return overdue_answer(out, tracker)
        out.text("好的，请问您想了解哪方面的信息？", MENU_BUTTONS)
        return []
