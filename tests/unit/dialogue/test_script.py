"""Traditional in → Traditional out, for every kind of reply."""

from __future__ import annotations

from typing import Any

import pytest

from actions.conversation import ActionChitchat
from actions.handoff import ActionHandleUnresolved, ActionHandoff
from actions.rate import ActionAnswerRate
from actions.repayment import ActionAnswerRepayment
from actions.script import script_for_text
from bot.text import detect_script, to_script
from tests.unit.dialogue.helpers import make_tracker, run_action, slot_events, texts

pytestmark = pytest.mark.usefixtures("loan_db")

CONTEXT = {"product": "credit", "amount": 50000.0, "term": 12.0}


@pytest.mark.parametrize(
    ("action", "text", "intent", "slots"),
    [
        (ActionAnswerRate(), "信用貸的利率是多少？", "ask_rate", {"product": "credit"}),
        (ActionAnswerRate(), "請問利率多少", "ask_rate", {}),  # product buttons
        (ActionAnswerRepayment(), "每個月還多少錢", "ask_repayment", CONTEXT),
        (ActionChitchat(), "你好，請問在嗎", "greet", {}),
        (ActionHandleUnresolved(), "這個問題聽不懂嗎", "nlu_fallback", {}),
        (ActionHandoff(), "我要投訴你們", "complaint", {}),
    ],
)
def test_traditional_in_traditional_out(action: Any, text: str, intent: str,
                                        slots: dict[str, Any], domain: dict[str, Any]) -> None:
    assert detect_script(text) == "traditional"
    messages, events = run_action(action, make_tracker(text, intent, slots=slots), domain)
    for reply in texts(messages):
        assert detect_script(reply) == "traditional", reply
    for message in messages:
        for button in message.get("buttons") or []:
            # already Traditional: converting again changes nothing
            assert to_script(button["title"], "traditional") == button["title"]
    assert slot_events(events)["reply_script"] == "traditional"


def test_schedule_labels_follow_the_script(domain: dict[str, Any]) -> None:
    messages, _ = run_action(ActionAnswerRepayment(),
                             make_tracker("每個月還多少錢", "ask_repayment", slots=CONTEXT), domain)
    schedule = next(m["custom"]["schedule"] for m in messages if m.get("custom"))
    assert schedule["method_label"] == "等額本息"
    assert schedule["method"] == "equal_installment"  # codes stay machine-readable


def test_simplified_stays_simplified(domain: dict[str, Any]) -> None:
    messages, events = run_action(ActionAnswerRate(),
                                  make_tracker("信用贷利率多少", "ask_rate",
                                               slots={"product": "credit"}), domain)
    assert "信用贷" in texts(messages)[0]
    assert "reply_script" not in slot_events(events)


def test_script_neutral_message_keeps_the_conversation_script(domain: dict[str, Any]) -> None:
    tracker = make_tracker("36期", "inform",
                           slots={**CONTEXT, "term": 36.0, "topic": "repayment",
                                  "reply_script": "traditional"})
    from actions.info import ActionHandleInform

    messages, _ = run_action(ActionHandleInform(), tracker, domain)
    assert detect_script(texts(messages)[0]) == "traditional"


@pytest.mark.parametrize(
    ("text", "previous", "expected"),
    [
        ("36期", "traditional", "traditional"),
        ("12345", None, "simplified"),
        ("換成等額本金", "simplified", "traditional"),
        ("换成等额本金", "traditional", "simplified"),
        ("", "traditional", "traditional"),
    ],
)
def test_script_for_text(text: str, previous: str | None, expected: str) -> None:
    assert script_for_text(text, previous) == expected


def test_script_comes_from_the_original_not_the_normalised_text(domain: dict[str, Any]) -> None:
    """Rasa's "text" is the normaliser's Simplified output; the borrower wrote Traditional."""
    tracker = make_tracker("信用贷的利率是多少", "ask_rate", slots={"product": "credit"})
    tracker.latest_message["original_text"] = "信用貸的利率是多少"
    messages, _ = run_action(ActionAnswerRate(), tracker, domain)
    assert detect_script(texts(messages)[0]) == "traditional"


def test_core_fallback_keeps_the_script_after_its_rewind(domain: dict[str, Any]) -> None:
    from actions.handoff import ActionDefaultFallback

    messages, events = run_action(ActionDefaultFallback(),
                                  make_tracker("這樣說對嗎", "affirm"), domain)
    assert detect_script(texts(messages)[0]) == "traditional"
    assert events[0]["event"] == "rewind"
    assert events[1] == {**events[1], "event": "slot", "name": "reply_script",
                         "value": "traditional"}
