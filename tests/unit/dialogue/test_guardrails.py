"""Every template and every action output must pass the 三不原则 (actions.guardrails)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from rasa_sdk import Action, Tracker

from actions.conversation import CHITCHAT_INTENTS, ActionChitchat
from actions.guardrails import check_reply
from actions.handoff import ActionDefaultFallback, ActionHandleUnresolved, ActionHandoff
from actions.info import (
    ActionAnswerEligibility,
    ActionAnswerLimit,
    ActionAnswerOverdue,
    ActionHandleInform,
)
from actions.progress import ActionReportProgress
from actions.rate import ActionAnswerRate
from actions.repayment import ActionAnswerRepayment
from actions.store.repository import LoanRepository
from actions.store.seed import BORROWERS
from bot.text import to_script
from tests.unit.dialogue.helpers import DOMAIN_DIR, make_tracker, run_action, texts


def all_templates() -> Iterator[tuple[str, str]]:
    """(name, text) of every text and button title in every bot/domain file."""
    for path in sorted(DOMAIN_DIR.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for section in ("responses", "texts"):
            for name, variations in (data.get(section) or {}).items():
                for variation in variations:
                    yield f"{path.name}:{name}", variation.get("text", "")
                    for button in variation.get("buttons") or []:
                        yield f"{path.name}:{name}:button", button["title"]


TEMPLATES = list(all_templates())


def test_templates_were_found() -> None:
    names = {name for name, _ in TEMPLATES}
    assert {"texts.yml:greet", "texts.yml:handoff_sensitive_intent"} <= names


@pytest.mark.parametrize(("name", "text"), TEMPLATES, ids=[n for n, _ in TEMPLATES])
@pytest.mark.parametrize("script", ["simplified", "traditional"])
def test_template_passes_guardrails(name: str, text: str, script: str) -> None:
    assert check_reply(to_script(text, script)) == []


def action_cases(repo: LoanRepository) -> Iterator[tuple[str, Action, Tracker]]:
    methods = ("equal_installment", "equal_principal", "interest_only", "bullet")
    for product in repo.list_products():
        base = {"product": product.code}
        yield f"rate-{product.code}", ActionAnswerRate(), make_tracker("利率", "ask_rate",
                                                                       slots=base)
        amounts = (float(product.min_amount), float(product.max_amount), 123456.78)
        for amount in amounts:
            for term in (product.terms[0], product.terms[-1], 7):
                key = f"{product.code}-{amount}-{term}"
                yield f"rate-{key}", ActionAnswerRate(), make_tracker(
                    "利息多少", "ask_rate",
                    slots={**base, "amount": amount, "term": float(term)})
                for method in (*methods, None):
                    slots = {**base, "amount": amount, "term": float(term),
                             "repayment_method": method}
                    yield f"plan-{key}-{method}", ActionAnswerRepayment(), make_tracker(
                        "每月还多少", "ask_repayment", slots=slots)
                yield f"compare-{product.code}-{amount}-{term}", ActionAnswerRepayment(), (
                    make_tracker("哪种还款方式划算", "ask_repayment",
                                 slots={**base, "amount": amount, "term": float(term)}))
                for paid in ("", "还了1期", "还了3期后"):
                    yield (f"early-{product.code}-{amount}-{term}-{paid}",
                           ActionAnswerRepayment(),
                           make_tracker(f"{paid}提前还款", "ask_repayment",
                                        slots={**base, "amount": amount, "term": float(term)}))
        for action, intent in ((ActionAnswerLimit(), "ask_limit"),
                               (ActionAnswerEligibility(), "ask_eligibility"),
                               (ActionAnswerOverdue(), "ask_overdue")):
            yield f"{intent}-{product.code}", action, make_tracker("问题", intent, slots=base)
    for borrower_id, *_ in BORROWERS:
        verified = {"verified": True, "borrower_id": borrower_id}
        result_ids = [a.id for a in repo.applications_for_borrower(borrower_id)]
        for action, intent in ((ActionAnswerLimit(), "ask_limit"),
                               (ActionAnswerOverdue(), "ask_overdue"),
                               (ActionAnswerRepayment(), "ask_repayment")):
            yield f"{intent}-{borrower_id}", action, make_tracker("我的下期还款", intent,
                                                                  slots=verified)
        yield f"own-early-{borrower_id}", ActionAnswerRepayment(), make_tracker(
            "我提前还款要还多少", "ask_repayment", slots=verified)
        yield f"progress-{borrower_id}", ActionReportProgress(), make_tracker(
            "", "provide_identity", slots={**verified, "application_ids": result_ids})
    for intent in CHITCHAT_INTENTS:
        yield f"chitchat-{intent}", ActionChitchat(), make_tracker("你好", intent)
    for intent in ("request_human", "complaint", "negotiate_repayment", "report_fraud",
                   "change_account_info"):
        yield f"handoff-{intent}", ActionHandoff(), make_tracker("转人工", intent)
    for count in (0.0, 2.0):
        yield f"unresolved-{count}", ActionHandleUnresolved(), make_tracker(
            "？？", "nlu_fallback", slots={"unresolved_turns": count})
    yield "inform-no-topic", ActionHandleInform(), make_tracker("信用贷", "inform")
    for count in (0.0, 2.0):
        yield f"core-fallback-{count}", ActionDefaultFallback(), make_tracker(
            "好的", "affirm", slots={"unresolved_turns": count})


@pytest.mark.parametrize("script_text", ["", "請問"])
def test_action_outputs_pass_guardrails(domain: dict[str, Any], loan_db: str,
                                        script_text: str) -> None:
    """Hundreds of replies (every product, amount edge, term, method, borrower), both scripts."""
    repo = LoanRepository(loan_db)
    checked = 0
    failures: list[str] = []
    for case, action, tracker in action_cases(repo):
        if script_text:  # a Traditional cue makes every reply go out in Traditional
            tracker.latest_message["text"] = script_text + "利率是多少呢"
        messages, _ = run_action(action, tracker, domain)
        for reply in texts(messages) + [b["title"] for m in messages
                                        for b in m.get("buttons") or []]:
            checked += 1
            violations = check_reply(reply)
            if violations:
                failures.append(f"{case}: {violations} in {reply!r}")
    assert not failures, "\n".join(failures[:10])
    assert checked > 300
