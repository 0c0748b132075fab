"""Rate, repayment, limit, eligibility and overdue answers against the seeded loan DB."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from actions.finance.early_repayment import quote_early_repayment
from actions.finance.formatting import format_percent, format_yuan
from actions.finance.schedule import build_schedule, compare_methods
from actions.info import (
    ActionAnswerEligibility,
    ActionAnswerLimit,
    ActionAnswerOverdue,
    ActionHandleInform,
)
from actions.rate import ActionAnswerRate
from actions.repayment import ActionAnswerRepayment, repayment_topic
from actions.store.repository import LoanRepository
from tests.unit.dialogue.helpers import (
    entity,
    make_tracker,
    run_action,
    slot_events,
    texts,
)

pytestmark = pytest.mark.usefixtures("loan_db")


@pytest.fixture
def repo(loan_db: str) -> LoanRepository:
    return LoanRepository(loan_db)


def customs(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["custom"] for m in messages if m.get("custom")]


def test_rate_without_product_asks_with_product_buttons(domain: dict[str, Any],
                                                        repo: LoanRepository) -> None:
    messages, events = run_action(ActionAnswerRate(), make_tracker("利率多少", "ask_rate"), domain)
    buttons = messages[0]["buttons"]
    assert {json.loads(b["payload"][len("/inform"):])["product"] for b in buttons} == {
        p.code for p in repo.list_products()
    }
    assert all(b["payload"].startswith('/inform{"product":') for b in buttons)
    assert slot_events(events)["topic"] == "rate"


@pytest.mark.parametrize("code", ["credit", "provident_fund", "business", "mortgage"])
def test_rate_names_product_apr_and_daily_rate(code: str, domain: dict[str, Any],
                                               repo: LoanRepository) -> None:
    product, rate = repo.product_annual_rate(code)
    tracker = make_tracker("利率多少", "ask_rate", slots={"product": code})
    text = texts(run_action(ActionAnswerRate(), tracker, domain)[0])[0]
    assert product.name in text and "年化利率" in text
    assert format_percent(rate) in text
    assert "日利率" in text and "360" in text
    if product.rate_type == "lpr":
        lpr = repo.current_lpr().for_tenor(product.lpr_tenor or "")
        assert "LPR" in text and "加点" in text and format_percent(lpr) in text


def test_rate_with_amount_and_term_gives_total_interest(domain: dict[str, Any],
                                                        repo: LoanRepository) -> None:
    _, rate = repo.product_annual_rate("credit")
    tracker = make_tracker("借5万12期利息多少", "ask_rate",
                           slots={"product": "credit", "amount": 50000.0, "term": 12.0})
    text = texts(run_action(ActionAnswerRate(), tracker, domain)[0])[0]
    expected = build_schedule(50000, rate, 12, "equal_installment")
    assert f"总利息{format_yuan(expected.total_interest)}" in text
    assert "未指定还款方式" in text


def test_repayment_schedule_text_and_json(domain: dict[str, Any], repo: LoanRepository) -> None:
    _, rate = repo.product_annual_rate("credit")
    tracker = make_tracker("借5万分12期每月还多少", "ask_repayment",
                           slots={"product": "credit", "amount": 50000.0, "term": 12.0})
    messages, events = run_action(ActionAnswerRepayment(), tracker, domain)
    schedule = build_schedule(50000, rate, 12, "equal_installment")
    text = texts(messages)[0]
    assert f"每月还款{format_yuan(schedule.first_payment)}" in text
    assert f"总利息{format_yuan(schedule.total_interest)}" in text
    for row in (*schedule.rows[:3], schedule.rows[-1]):
        assert f"第{row.period}期：还款{format_yuan(row.payment)}" in text
    assert "第4期" not in text
    assert "四舍五入到分" in text and "默认按等额本息" in text
    payload = customs(messages)[0]["schedule"]
    assert payload["rows"] == [row.as_dict() for row in schedule.rows]
    assert payload["total_interest"] == str(schedule.total_interest)
    assert slot_events(events)["topic"] == "repayment"


def test_equal_principal_states_first_payment(domain: dict[str, Any],
                                              repo: LoanRepository) -> None:
    _, rate = repo.product_annual_rate("credit")
    tracker = make_tracker("等额本金", "ask_repayment", slots={
        "product": "credit", "amount": 50000.0, "term": 12.0,
        "repayment_method": "equal_principal"})
    text = texts(run_action(ActionAnswerRepayment(), tracker, domain)[0])[0]
    schedule = build_schedule(50000, rate, 12, "equal_principal")
    assert f"首月还款{format_yuan(schedule.first_payment)}" in text
    assert "未指定" not in text


@pytest.mark.parametrize(
    ("slots", "question"),
    [
        ({"product": None}, "哪款产品"),
        ({"product": "credit", "amount": None, "term": 12.0}, "借多少钱"),
        ({"product": "credit", "amount": 50000.0, "term": None}, "分几期"),
        ({"product": "credit", "amount": 50000.0, "term": 7.0}, "暂不支持7期"),
        ({"product": "credit", "amount": 99_000_000.0, "term": 12.0},
         "9900万元不在信用贷的单笔可借范围内"),
    ],
)
def test_missing_or_invalid_values_are_asked_for(slots: dict[str, Any], question: str,
                                                 domain: dict[str, Any]) -> None:
    tracker = make_tracker("还款计划", "ask_repayment", slots=slots)
    messages, _ = run_action(ActionAnswerRepayment(), tracker, domain)
    assert question in texts(messages)[0]
    assert not customs(messages)


def test_term_buttons_offer_the_product_terms(domain: dict[str, Any],
                                              repo: LoanRepository) -> None:
    tracker = make_tracker("还款计划", "ask_repayment",
                           slots={"product": "credit", "amount": 50000.0})
    messages, _ = run_action(ActionAnswerRepayment(), tracker, domain)
    product = repo.get_product("credit")
    assert product is not None
    assert [b["payload"] for b in messages[0]["buttons"]] == [
        f'/inform{{"term":{t}}}' for t in product.terms
    ]


def test_unoffered_method_asks_for_an_offered_one(domain: dict[str, Any],
                                                  repo: LoanRepository) -> None:
    product = repo.get_product("credit")
    assert product is not None
    missing = next(m for m in ("bullet", "interest_only", "equal_principal")
                   if m not in product.methods)
    tracker = make_tracker("还款计划", "ask_repayment", slots={
        "product": "credit", "amount": 50000.0, "term": 12.0, "repayment_method": missing})
    messages, _ = run_action(ActionAnswerRepayment(), tracker, domain)
    assert "暂不支持" in texts(messages)[0]
    assert len(messages[0]["buttons"]) == len(product.methods)


CONTEXT = {"product": "credit", "amount": 50000.0, "term": 12.0, "topic": "repayment"}


@pytest.mark.parametrize(
    ("text", "entities", "changed", "expected"),
    [
        ("那36期呢?", [entity("term", 36)], {"term": 36.0}, (50000, 36, "equal_installment")),
        ("换成等额本金", [entity("repayment_method", "equal_principal")],
         {"repayment_method": "equal_principal"}, (50000, 12, "equal_principal")),
        ("如果借10万呢", [entity("amount", 100000)], {"amount": 100000.0},
         (100000, 12, "equal_installment")),
    ],
)
def test_follow_ups_reuse_the_context(text: str, entities: list[dict[str, Any]],
                                      changed: dict[str, Any], expected: tuple[int, int, str],
                                      domain: dict[str, Any], repo: LoanRepository) -> None:
    _, rate = repo.product_annual_rate("credit")
    tracker = make_tracker(text, "inform", entities=entities, slots={**CONTEXT, **changed})
    messages, _ = run_action(ActionHandleInform(), tracker, domain)
    amount, term, method = expected
    schedule = build_schedule(amount, rate, term, method)
    assert customs(messages)[0]["schedule"]["rows"] == [r.as_dict() for r in schedule.rows]
    assert f"总利息{format_yuan(schedule.total_interest)}" in texts(messages)[0]


def test_comparison_lists_every_offered_method(domain: dict[str, Any],
                                               repo: LoanRepository) -> None:
    product, rate = repo.product_annual_rate("business")
    tracker = make_tracker("哪种还款方式划算", "ask_repayment",
                           slots={"product": "business", "amount": 100000.0, "term": 12.0})
    messages, events = run_action(ActionAnswerRepayment(), tracker, domain)
    text = texts(messages)[0]
    schedules = compare_methods(100000, rate, 12, product.methods)
    for s in schedules:
        assert f"{s.method_label}：" in text and format_yuan(s.total_interest) in text
    cheapest = min(schedules, key=lambda s: s.total_interest)
    assert f"总利息最少的是{cheapest.method_label}" in text
    assert slot_events(events)["topic"] == "compare"


def test_follow_up_after_a_comparison_compares_again(domain: dict[str, Any]) -> None:
    tracker = make_tracker("那24期呢", "inform", entities=[entity("term", 24)],
                           slots={**CONTEXT, "term": 24.0, "topic": "compare"})
    messages, _ = run_action(ActionHandleInform(), tracker, domain)
    assert "各还款方式对比" in texts(messages)[0]


def test_early_repayment_uses_the_product_fee_rule(domain: dict[str, Any],
                                                   repo: LoanRepository) -> None:
    product, rate = repo.product_annual_rate("credit")
    # "还了6期" is also tagged as a term entity; the loan's term (12) must survive
    tracker = make_tracker(
        "还了6期后提前还款划算吗", "ask_repayment", entities=[entity("term", 6)],
        slots={"product": "credit", "amount": 50000.0, "term": 6.0},
        events=[{"event": "slot", "name": "term", "value": 12.0}],
    )
    messages, events = run_action(ActionAnswerRepayment(), tracker, domain)
    quote = quote_early_repayment(build_schedule(50000, rate, 12, "equal_installment"), 6,
                                  product.fee_rule)
    text = texts(messages)[0]
    assert f"还满{quote.after_period}期" in text
    assert f"少付利息{format_yuan(quote.interest_saved)}" in text
    assert f"手续费{format_yuan(quote.fee)}" in text
    assert f"净节省{format_yuan(quote.net_saving)}" in text
    assert slot_events(events)["term"] == 12.0


def test_early_repayment_without_periods_says_what_it_assumed(domain: dict[str, Any]) -> None:
    tracker = make_tracker("可以提前还款吗", "ask_repayment", slots=CONTEXT)
    text = texts(run_action(ActionAnswerRepayment(), tracker, domain)[0])[0]
    assert "还满6期" in text and "未说明已还期数" in text


def test_verified_borrower_gets_own_next_due(domain: dict[str, Any],
                                             repo: LoanRepository) -> None:
    loans = [loan for loan in repo.loans_for_borrower("B0001") if loan.next_due_date]
    assert loans
    tracker = make_tracker("下期什么时候还，还多少", "ask_repayment",
                           slots={"verified": True, "borrower_id": "B0001"})
    text = texts(run_action(ActionAnswerRepayment(), tracker, domain)[0])[0]
    due = loans[0].next_due_date
    assert due is not None and f"{due.year}年{due.month}月{due.day}日" in text
    assert loans[0].next_due_amount is not None
    assert format_yuan(loans[0].next_due_amount) in text


def test_unverified_borrower_gets_no_personal_data(domain: dict[str, Any]) -> None:
    tracker = make_tracker("下期什么时候还", "ask_repayment", slots={"borrower_id": "B0001"})
    text = texts(run_action(ActionAnswerRepayment(), tracker, domain)[0])[0]
    assert "身份核验" in text and "下一期还款日为" not in text


@pytest.mark.parametrize(
    ("text", "previous", "follow_up", "names_method", "topic"),
    [
        ("提前还款要手续费吗", None, False, False, "early_repayment"),
        ("等额本息和等额本金哪个划算", None, False, True, "compare"),
        ("每月几号扣款", "rate", False, False, "repay_howto"),
        ("那36期呢", "compare", True, False, "compare"),
        ("换成等额本金", "compare", True, True, "repayment"),
        ("借5万12期每月还多少", "compare", False, False, "repayment"),
    ],
)
def test_repayment_topic(text: str, previous: str | None, follow_up: bool, names_method: bool,
                         topic: str) -> None:
    assert repayment_topic(text, previous, follow_up, names_method) == topic


def test_limit_for_product_and_for_verified_borrower(domain: dict[str, Any],
                                                     repo: LoanRepository) -> None:
    borrower = repo.get_borrower("B0001")
    assert borrower is not None
    tracker = make_tracker("我能借多少", "ask_limit",
                           slots={"product": "credit", "verified": True, "borrower_id": "B0001"})
    text = texts(run_action(ActionAnswerLimit(), tracker, domain)[0])[0]
    assert f"可用额度{format_yuan(borrower.available_limit)}" in text
    assert "信用贷" in text and "单笔可借" in text
    anonymous = make_tracker("能借多少", "ask_limit", slots={"product": "credit",
                                                            "borrower_id": "B0001"})
    text = texts(run_action(ActionAnswerLimit(), anonymous, domain)[0])[0]
    assert "可用额度" not in text.split("如需查询")[0]


def test_eligibility_lists_product_requirements(domain: dict[str, Any],
                                                repo: LoanRepository) -> None:
    product = repo.get_product("provident_fund")
    assert product is not None
    tracker = make_tracker("申请条件", "ask_eligibility", slots={"product": "provident_fund"})
    text = texts(run_action(ActionAnswerEligibility(), tracker, domain)[0])[0]
    assert all(item in text for item in product.requirements)
    assert all(doc in text for doc in product.documents)


def test_overdue_rules_and_own_overdue_days(domain: dict[str, Any],
                                            repo: LoanRepository) -> None:
    overdue = [loan for loan in repo.loans_for_borrower("B0004") if loan.is_overdue]
    assert overdue
    tracker = make_tracker("逾期了怎么办", "ask_overdue",
                           slots={"verified": True, "borrower_id": "B0004"})
    text = texts(run_action(ActionAnswerOverdue(), tracker, domain)[0])[0]
    assert f"已逾期{overdue[0].overdue_days}天" in text
    product = repo.get_product(overdue[0].product_code)
    assert product is not None
    assert f"{product.grace_days}天宽限期" in text
    assert f"{product.credit_report_after_days}天" in text


def test_answers_reset_the_unresolved_counter(domain: dict[str, Any]) -> None:
    tracker = make_tracker("信用贷利率", "ask_rate",
                           slots={"product": "credit", "unresolved_turns": 2.0})
    _, events = run_action(ActionAnswerRate(), tracker, domain)
    assert slot_events(events)["unresolved_turns"] == 0.0


def test_store_outage_gets_a_message_not_a_crash(domain: dict[str, Any],
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Any) -> None:
    from actions import common

    monkeypatch.setenv("LOAN_DB_URL", f"sqlite:///{tmp_path / 'empty.sqlite'}")
    common.repository.cache_clear()
    tracker = make_tracker("信用贷利率", "ask_rate", slots={"product": "credit"})
    messages, _ = run_action(ActionAnswerRate(), tracker, domain)
    assert texts(messages) and "稍后再试" in texts(messages)[0]


def test_amount_slot_float_is_exact(domain: dict[str, Any], repo: LoanRepository) -> None:
    _, rate = repo.product_annual_rate("credit")
    tracker = make_tracker("借15000.5", "ask_repayment",
                           slots={"product": "credit", "amount": 15000.5, "term": 12.0})
    messages, _ = run_action(ActionAnswerRepayment(), tracker, domain)
    schedule = build_schedule(Decimal("15000.50"), rate, 12, "equal_installment")
    assert customs(messages)[0]["schedule"]["principal"] == str(schedule.principal)


def test_follow_up_classified_as_repayment_after_a_rate_answer_stays_on_rate(
    domain: dict[str, Any], repo: LoanRepository
) -> None:
    _, rate = repo.product_annual_rate("credit")
    tracker = make_tracker("那36期呢", "ask_repayment", entities=[entity("term", 36)],
                           slots={**CONTEXT, "term": 36.0, "topic": "rate"})
    messages, events = run_action(ActionAnswerRepayment(), tracker, domain)
    schedule = build_schedule(50000, rate, 36, "equal_installment")
    assert "年化利率" in texts(messages)[0]
    assert f"总利息{format_yuan(schedule.total_interest)}" in texts(messages)[0]
    assert not customs(messages) and slot_events(events)["topic"] == "rate"


def test_follow_up_classified_as_repayment_reuses_context(domain: dict[str, Any],
                                                         repo: LoanRepository) -> None:
    _, rate = repo.product_annual_rate("credit")
    tracker = make_tracker("换成等额本金呢", "ask_repayment",
                           entities=[entity("repayment_method", "equal_principal")],
                           slots={**CONTEXT, "repayment_method": "equal_principal"})
    messages, _ = run_action(ActionAnswerRepayment(), tracker, domain)
    schedule = build_schedule(50000, rate, 12, "equal_principal")
    assert customs(messages)[0]["schedule"]["rows"] == [r.as_dict() for r in schedule.rows]


@pytest.mark.parametrize(("text", "expected"), [("那36期呢", True), ("如果借10万", True),
                                                ("换成等额本金", True), ("还款计划", False),
                                                ("借5万12期每月还多少", False)])
def test_is_follow_up(text: str, expected: bool) -> None:
    from actions.repayment import is_follow_up

    assert is_follow_up(text) is expected


def test_verified_borrower_prepayment_quotes_their_own_loan(domain: dict[str, Any],
                                                           repo: LoanRepository) -> None:
    loan = next(loan for loan in repo.loans_for_borrower("B0001") if loan.next_due_date)
    product = repo.get_product(loan.product_code)
    assert product is not None
    quote = quote_early_repayment(loan.schedule(), loan.periods_paid, product.fee_rule)
    tracker = make_tracker("我现在提前还款要还多少", "ask_repayment",
                           slots={"verified": True, "borrower_id": "B0001"})
    text = texts(run_action(ActionAnswerRepayment(), tracker, domain)[0])[0]
    assert loan.id in text
    assert f"合计{format_yuan(quote.payoff_amount)}" in text
    assert f"还满{loan.periods_paid}期" in text


def test_default_method_is_configurable(domain: dict[str, Any],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOANBOT_DEFAULT_METHOD", "equal_principal")
    tracker = make_tracker("每月还多少", "ask_repayment", slots=CONTEXT)
    messages, _ = run_action(ActionAnswerRepayment(), tracker, domain)
    assert customs(messages)[0]["schedule"]["method"] == "equal_principal"
    assert "默认按等额本金计算" in texts(messages)[0]
