"""ask_repayment: schedules, method comparison, early repayment, and how/when to repay.

Which of these the borrower wants comes from keywords in the message (比较/提前还/还款日 …);
a bare follow-up (intent inform: "那36期呢?") keeps the previous topic with the new value.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet

from actions.common import (
    LoanAction,
    current_repository,
    latest_entity_values,
    latest_text,
    mentions,
)
from actions.context import (
    amount_in_range,
    amount_slot,
    ask_amount,
    ask_method,
    ask_product,
    ask_term,
    choose_method,
    int_slot,
    periods_paid,
    resolve_product,
    slot_before_latest_message,
    to_amount,
)
from actions.finance.early_repayment import quote_early_repayment
from actions.finance.schedule import build_schedule, compare_methods
from actions.rate import rate_answer
from actions.replies import (
    HOW_TO_REPAY,
    amount_text,
    comparison_text,
    early_repayment_text,
    next_due_text,
    schedule_payload,
    schedule_text,
)
from actions.script import ScriptedDispatcher
from actions.settings import load_settings

SCHEDULE = "repayment"
COMPARE = "compare"
EARLY = "early_repayment"
HOWTO = "repay_howto"
REPAYMENT_TOPICS = (SCHEDULE, COMPARE, EARLY, HOWTO)

COMPARE_WORDS = (
    "比较", "对比", "划算", "区别", "哪个好", "哪种好", "哪个省", "哪种省", "有什么不同",
)
EARLY_WORDS = ("提前还", "提前结清", "提前还清", "提前清贷")
HOWTO_WORDS = ("怎么还", "如何还", "还款日", "哪天还", "什么时候还", "几号还", "扣款", "在哪还",
               "下期", "下一期", "这个月要还", "本月要还", "下个月要还", "应还多少", "要还多少钱")


def repayment_topic(text: str, previous: str | None, follow_up: bool, names_method: bool) -> str:
    """Which repayment question this is; a follow-up keeps comparing / prepaying."""
    if mentions(text, *EARLY_WORDS):
        return EARLY
    if mentions(text, *COMPARE_WORDS):
        return COMPARE
    if mentions(text, *HOWTO_WORDS):
        return HOWTO
    if follow_up and previous in (COMPARE, EARLY) and not names_method:
        return previous
    return SCHEDULE


def is_follow_up(text: str) -> bool:
    """"那36期呢?" / "如果借10万呢": a variation on the previous question, not a new one."""
    return mentions(text, "呢", "如果", "那", "换成", "改成")


def repayment_answer(out: ScriptedDispatcher, tracker: Tracker, follow_up: bool) -> list[EventType]:
    """Shared by action_answer_repayment and follow-ups routed by action_handle_inform."""
    text = latest_text(tracker)
    names_method = bool(latest_entity_values(tracker, "repayment_method"))
    topic = repayment_topic(text, tracker.get_slot("topic"), follow_up, names_method)
    if topic == HOWTO:
        return howto_answer(out, tracker)

    events: list[EventType] = []
    after_period = periods_paid(text) if topic == EARLY else None
    term = int_slot(tracker, "term")
    if after_period is not None and after_period in latest_entity_values(tracker, "term"):
        # "还了6期后提前还" tags "6期" as a term; it is the periods paid, not the loan's term
        previous = slot_before_latest_message(tracker, "term")
        term = int(previous) if previous else None
        events.append(SlotSet("term", previous))

    repo = current_repository()
    if topic == EARLY and amount_slot(tracker) is None:
        own = own_early_repayment(out, tracker, repo)
        if own is not None:
            return events + own
    product = resolve_product(tracker, repo)
    if product is None:
        return events + ask_product(out, repo, topic)
    amount = amount_slot(tracker)
    if amount is None:
        return events + ask_amount(out, product, topic)
    if not amount_in_range(product, amount):
        prefix = f"{amount_text(amount)}不在{product.name}的单笔可借范围内。"
        return events + ask_amount(out, product, topic, prefix=prefix)
    if term is None:
        return events + ask_term(out, product, topic)
    if term not in product.terms:
        return events + ask_term(out, product, topic, prefix=f"{product.name}暂不支持{term}期，")
    lpr = repo.current_lpr() if product.rate_type == "lpr" else None
    rate = product.annual_rate(lpr)
    principal = to_amount(amount)

    if topic == COMPARE:
        schedules = compare_methods(principal, rate, term, product.methods)
        out.text(comparison_text(product, schedules))
        return events + [SlotSet("topic", COMPARE)]

    method, assumed = choose_method(tracker, product)
    if method is None:
        return events + ask_method(out, product, topic, tracker.get_slot("repayment_method"))
    schedule = build_schedule(principal, rate, term, method, max_principal=product.max_amount)
    if topic == EARLY:
        assumed_period = after_period is None
        paid = max(1, term // 2) if after_period is None else after_period
        if paid >= term:
            out.text(f"已还期数需要小于总期数{term}期，请告诉我您已经还了几期。")
            return events + [SlotSet("topic", EARLY)]
        quote = quote_early_repayment(schedule, paid, product.fee_rule)
        out.text(early_repayment_text(product, schedule, quote, assumed_period))
        return events + [SlotSet("topic", EARLY)]

    out.text(schedule_text(product, schedule, assumed, load_settings().preview_rows))
    payload = schedule_payload(product, schedule)
    payload["schedule"]["method_label"] = out.localise(payload["schedule"]["method_label"])
    payload["schedule"]["product_name"] = out.localise(payload["schedule"]["product_name"])
    payload["schedule"]["rounding"] = out.localise(payload["schedule"]["rounding"])
    out.custom(payload)
    return events + [SlotSet("topic", SCHEDULE)]


def own_early_repayment(
    out: ScriptedDispatcher, tracker: Tracker, repo: Any
) -> list[EventType] | None:
    """A verified borrower asking about prepayment without example figures: quote their loan."""
    borrower_id = tracker.get_slot("borrower_id")
    if not (tracker.get_slot("verified") and borrower_id):
        return None
    code = tracker.get_slot("product")
    loans = [
        loan for loan in repo.loans_for_borrower(str(borrower_id))
        if loan.next_due_date is not None and loan.periods_paid < loan.term_months
        and (not code or loan.product_code == code)
    ]
    if not loans:
        return None
    loan = loans[0]
    product = repo.get_product(loan.product_code)
    if product is None:
        return None
    schedule = loan.schedule()
    quote = quote_early_repayment(schedule, loan.periods_paid, product.fee_rule)
    out.text(f"按您名下的{loan.product_name}（{loan.id}）测算：\n"
             + early_repayment_text(product, schedule, quote, assumed_period=False))
    return [SlotSet("topic", EARLY)]


def howto_answer(out: ScriptedDispatcher, tracker: Tracker) -> list[EventType]:
    """How and when to repay; a verified borrower also gets their own next instalment."""
    if tracker.get_slot("verified") and tracker.get_slot("borrower_id"):
        loans = current_repository().loans_for_borrower(str(tracker.get_slot("borrower_id")))
        out.text(next_due_text(loans) + "\n" + HOW_TO_REPAY)
    else:
        out.text(
            HOW_TO_REPAY
            + "\n如需查询您本人的下期还款日和应还金额，请先发送“查询申请进度”完成身份核验。"
        )
    return [SlotSet("topic", HOWTO)]


class ActionAnswerRepayment(LoanAction):
    """Answers ask_repayment."""

    resets_unresolved = True

    def name(self) -> str:
        return "action_answer_repayment"

    def respond(
        self, out: ScriptedDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        text = latest_text(tracker)
        follow_up = is_follow_up(text)
        if follow_up and tracker.get_slot("topic") == "rate" and not mentions(text, "月供", "每月"):
            # "那36期呢?" after a rate answer asks for the rate answer with the new value
            return rate_answer(out, tracker)
        return repayment_answer(out, tracker, follow_up=follow_up)
