"""ask_rate: the product's APR (named), daily rate with its day-count, LPR + 加点 for floating
products, how each offered method computes interest, and total interest when amount and term
are known."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet

from actions.common import LoanAction, current_repository
from actions.context import (
    amount_in_range,
    amount_slot,
    ask_product,
    choose_method,
    int_slot,
    resolve_product,
    to_amount,
)
from actions.finance.schedule import build_schedule
from actions.replies import amount_range_text, methods_text, rate_text, total_interest_text
from actions.script import ScriptedDispatcher

TOPIC = "rate"


def rate_answer(out: ScriptedDispatcher, tracker: Tracker) -> list[EventType]:
    """Shared by action_answer_rate and follow-ups routed by action_handle_inform."""
    repo = current_repository()
    product = resolve_product(tracker, repo)
    if product is None:
        return ask_product(out, repo, TOPIC)
    lpr = repo.current_lpr() if product.rate_type == "lpr" else None
    rate = product.annual_rate(lpr)
    parts = [rate_text(product, lpr), methods_text(product)]
    amount, term = amount_slot(tracker), int_slot(tracker, "term")
    if amount is not None and term is not None:
        method, assumed = choose_method(tracker, product)
        if not amount_in_range(product, amount):
            parts.append(
                f"{product.name}单笔可借{amount_range_text(product)}，请调整借款金额后再测算。"
            )
        elif term not in product.terms:
            terms = "、".join(str(t) for t in product.terms)
            parts.append(f"{product.name}可选期限为{terms}期，请调整期限后再测算。")
        elif method is not None:
            schedule = build_schedule(to_amount(amount), rate, term, method,
                                      max_principal=product.max_amount)
            parts.append(total_interest_text(schedule, assumed))
    else:
        parts.append("告诉我借款金额和期限（例如“借5万分12期”），我可以帮您算出总利息。")
    out.text("\n".join(parts))
    return [SlotSet("topic", TOPIC)]


class ActionAnswerRate(LoanAction):
    """Answers ask_rate."""

    resets_unresolved = True

    def name(self) -> str:
        return "action_answer_rate"

    def respond(
        self, out: ScriptedDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        return rate_answer(out, tracker)
