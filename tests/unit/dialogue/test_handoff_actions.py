"""The handoff signal exactly as docs/contracts.md specifies, and the unresolved counter."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from actions.conversation import ActionChitchat
from actions.handoff import ActionDefaultFallback, ActionHandleUnresolved, ActionHandoff
from actions.info import ActionAnswerOverdue
from tests.unit.dialogue.helpers import ROOT, make_tracker, run_action, slot_events, texts

pytestmark = pytest.mark.usefixtures("loan_db")

SENSITIVE = yaml.safe_load((ROOT / "config" / "handoff.yml").read_text(encoding="utf-8"))[
    "sensitive_intents"
]
CONTEXT = {"product": "credit", "amount": 50000.0, "term": 12.0,
           "repayment_method": "equal_principal", "phone": "13800000001",
           "phone_last4": "0001", "id_last6": "123456"}


def assert_handoff_signal(messages: list[dict[str, Any]], events: list[dict[str, Any]]) -> dict:
    """Text first, then the custom payload, and ConversationPaused as the last event."""
    assert len(messages) == 2
    assert messages[0].get("text") and "人工" in messages[0]["text"]
    assert not messages[0].get("custom")
    payload = messages[1]["custom"]
    assert set(payload) == {"handoff"}
    assert set(payload["handoff"]) == {"reason", "intent", "confidence", "unresolved_turns",
                                       "slots"}
    assert events[-1]["event"] == "pause"
    return payload["handoff"]


@pytest.mark.parametrize("intent", SENSITIVE)
def test_each_sensitive_intent_hands_off_at_once(intent: str, domain: dict[str, Any]) -> None:
    tracker = make_tracker("我要投诉", intent, slots=CONTEXT, confidence=0.93)
    messages, events = run_action(ActionHandoff(), tracker, domain)
    handoff = assert_handoff_signal(messages, events)
    assert handoff["reason"] == "sensitive_intent" and handoff["intent"] == intent
    assert handoff["confidence"] == 0.93 and handoff["unresolved_turns"] == 0
    assert handoff["slots"]["amount"] == 50000 and handoff["slots"]["term"] == 12
    assert handoff["slots"]["repayment_method"] == "equal_principal"


def test_payload_never_carries_identity_secrets(domain: dict[str, Any]) -> None:
    messages, _ = run_action(ActionHandoff(), make_tracker("转人工", "request_human",
                                                           slots=CONTEXT), domain)
    slots = messages[1]["custom"]["handoff"]["slots"]
    assert "phone_last4" not in slots and "id_last6" not in slots
    assert slots["phone"] == "138****0001"


def test_sensitive_intent_routed_elsewhere_still_hands_off(domain: dict[str, Any]) -> None:
    """The list lives in config/handoff.yml, so every action honours it."""
    messages, events = run_action(ActionAnswerOverdue(),
                                  make_tracker("我要投诉", "complaint"), domain)
    assert assert_handoff_signal(messages, events)["intent"] == "complaint"


def test_handoff_inside_a_form_closes_it(domain: dict[str, Any]) -> None:
    tracker = make_tracker("有人冒用我的身份", "report_fraud", active_loop="verification_form")
    messages, events = run_action(ActionHandoff(), tracker, domain)
    assert_handoff_signal(messages, events)
    assert {"event": "active_loop", "name": None} in [
        {"event": e["event"], "name": e.get("name")} for e in events
    ]


def test_handoff_logs_a_listen_so_the_resumed_chat_matches_rules(domain: dict[str, Any]) -> None:
    _, events = run_action(ActionHandoff(), make_tracker("转人工", "request_human"), domain)
    assert [e["event"] for e in events[-2:]] == ["action", "pause"]
    assert events[-2]["name"] == "action_listen"


def test_unresolved_turns_count_then_hand_off(domain: dict[str, Any]) -> None:
    count = 0.0
    for turn, intent in enumerate(["nlu_fallback", "out_of_scope"], start=1):
        tracker = make_tracker("随便说说", intent, slots={"unresolved_turns": count})
        messages, events = run_action(ActionHandleUnresolved(), tracker, domain)
        count = slot_events(events)["unresolved_turns"]
        assert count == turn
        assert messages[0]["buttons"] and not any(e["event"] == "pause" for e in events)
    tracker = make_tracker("没用", "not_helpful", slots={**CONTEXT, "unresolved_turns": count})
    messages, events = run_action(ActionHandleUnresolved(), tracker, domain)
    handoff = assert_handoff_signal(messages, events)
    assert handoff["reason"] == "unresolved_turns" and handoff["unresolved_turns"] == 3
    assert handoff["intent"] == "not_helpful"


def test_an_answer_resets_the_count(domain: dict[str, Any]) -> None:
    tracker = make_tracker("信用贷逾期怎么办", "ask_overdue",
                           slots={"product": "credit", "unresolved_turns": 2.0})
    _, events = run_action(ActionAnswerOverdue(), tracker, domain)
    assert slot_events(events)["unresolved_turns"] == 0.0
    tracker = make_tracker("听不懂", "nlu_fallback", slots={"unresolved_turns": 0.0})
    _, events = run_action(ActionHandleUnresolved(), tracker, domain)
    assert slot_events(events)["unresolved_turns"] == 1.0


def test_chitchat_does_not_reset_the_count(domain: dict[str, Any]) -> None:
    _, events = run_action(ActionChitchat(), make_tracker("你好", "greet",
                                                          slots={"unresolved_turns": 2.0}), domain)
    assert "unresolved_turns" not in slot_events(events)


@pytest.mark.parametrize("intent", ["greet", "goodbye", "thank", "bot_challenge", "affirm",
                                    "deny"])
def test_chitchat_answers_each_intent(intent: str, domain: dict[str, Any]) -> None:
    messages, _ = run_action(ActionChitchat(), make_tracker("你好", intent), domain)
    assert len(texts(messages)) == 1


def test_core_fallback_counts_and_reverts_the_message(domain: dict[str, Any]) -> None:
    tracker = make_tracker("好的", "affirm", slots={"unresolved_turns": 1.0},
                           active_loop="verification_form")
    messages, events = run_action(ActionDefaultFallback(), tracker, domain)
    assert events[0]["event"] == "rewind"  # UserUtteranceReverted, before the counter
    assert slot_events(events)["unresolved_turns"] == 2.0
    assert messages[0]["buttons"]


def test_core_fallback_at_the_limit_hands_off(domain: dict[str, Any]) -> None:
    tracker = make_tracker("好的", "affirm", slots={"unresolved_turns": 2.0})
    messages, events = run_action(ActionDefaultFallback(), tracker, domain)
    handoff = assert_handoff_signal(messages, events)
    assert handoff["reason"] == "unresolved_turns" and handoff["unresolved_turns"] == 3
    assert events[0]["event"] == "rewind"


def test_numeric_string_slots_are_numbers_in_the_payload(domain: dict[str, Any]) -> None:
    tracker = make_tracker("转人工", "request_human", slots={"amount": "50000", "term": "12"})
    messages, _ = run_action(ActionHandoff(), tracker, domain)
    slots = messages[1]["custom"]["handoff"]["slots"]
    assert slots["amount"] == 50000 and slots["term"] == 12
