"""verification_form validation, the identity check, and the progress report."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.progress import (
    ActionAskIdLast6,
    ActionReportProgress,
    ValidateVerificationForm,
    identity_slots_needed,
)
from actions.store.repository import LoanRepository
from tests.unit.dialogue.helpers import (
    GOOD_APP,
    GOOD_ID6,
    GOOD_PHONE,
    make_tracker,
    run_action,
    slot_events,
    texts,
)

pytestmark = pytest.mark.usefixtures("loan_db")

FORM = "verification_form"


def form_turn(domain: dict[str, Any], candidates: dict[str, Any],
              slots: dict[str, Any] | None = None) -> tuple[list[str], dict[str, Any]]:
    """Run the validation action the way Rasa's FormAction does: candidates appended last."""
    events = [{"event": "action", "name": FORM}] + [
        {"event": "slot", "name": k, "value": v} for k, v in candidates.items()
    ]
    all_slots = {**(slots or {}), **candidates}
    tracker = make_tracker("", "provide_identity", slots=all_slots, active_loop=FORM)
    tracker.events = tracker.events + events
    dispatcher = CollectingDispatcher()
    result = asyncio.run(ValidateVerificationForm().run(dispatcher, tracker, domain))
    return texts(dispatcher.messages), slot_events(result)


@pytest.mark.parametrize(
    ("slots", "needed"),
    [
        ({}, ["application_id", "phone_last4"]),
        ({"application_id": GOOD_APP}, ["application_id", "phone_last4"]),
        ({"phone": GOOD_PHONE}, ["phone", "id_last6"]),
        ({"phone": GOOD_PHONE, "phone_last4": "0001"}, ["phone", "id_last6"]),
        ({"application_id": GOOD_APP, "id_last6": GOOD_ID6}, ["application_id", "id_last6"]),
        ({"application_id": GOOD_APP, "phone": GOOD_PHONE}, ["application_id", "phone"]),
        ({"verified": True}, []),
    ],
)
def test_identity_slots_needed(slots: dict[str, Any], needed: list[str]) -> None:
    assert identity_slots_needed(slots) == needed


def test_locator_only_asks_for_the_secret(domain: dict[str, Any]) -> None:
    said, slots = form_turn(domain, {"application_id": GOOD_APP})
    assert slots["requested_slot"] == "phone_last4"
    assert said == []
    said, slots = form_turn(domain, {"phone": GOOD_PHONE})
    assert slots["requested_slot"] == "id_last6"


@pytest.mark.parametrize(
    "candidates",
    [
        {"application_id": GOOD_APP, "phone_last4": "0001"},
        {"application_id": GOOD_APP, "id_last6": GOOD_ID6},
        {"phone": GOOD_PHONE, "id_last6": GOOD_ID6},
        {"application_id": GOOD_APP, "phone": GOOD_PHONE},
    ],
)
def test_verification_success(domain: dict[str, Any], candidates: dict[str, Any],
                              loan_db: str) -> None:
    said, slots = form_turn(domain, candidates)
    assert slots["verified"] is True and slots["borrower_id"] == "B0001"
    expected = LoanRepository(loan_db).verify_identity(**candidates).application_ids
    assert slots["application_ids"] == list(expected)
    assert slots["requested_slot"] is None
    assert said == ["身份核验通过。"]
    # secrets are not kept once used
    assert slots["phone_last4"] is None and slots["id_last6"] is None


@pytest.mark.parametrize(
    "candidates",
    [
        {"application_id": GOOD_APP, "phone_last4": "9999"},  # wrong secret
        {"application_id": "LN20991231999", "phone_last4": "0001"},  # unknown application
        {"phone": GOOD_PHONE, "id_last6": "999999"},
        {"phone": "13912345678", "id_last6": GOOD_ID6},
    ],
)
def test_failure_reveals_nothing_and_clears_identity(domain: dict[str, Any],
                                                     candidates: dict[str, Any]) -> None:
    said, slots = form_turn(domain, candidates)
    assert said[0] == "身份核验未通过，请核对信息后重新提供。您还可以尝试2次。"
    for word in ("申请编号不", "手机号不", "身份证不", "不存在", "状态"):
        assert word not in said[0]
    assert all(slots[s] is None for s in ("application_id", "phone", "phone_last4", "id_last6"))
    assert slots["verification_failures"] == 1.0
    assert slots["requested_slot"] == "application_id"
    assert "verified" not in slots


def test_wrong_and_unknown_failures_say_the_same(domain: dict[str, Any]) -> None:
    wrong_secret, _ = form_turn(domain, {"application_id": GOOD_APP, "phone_last4": "9999"})
    unknown_app, _ = form_turn(domain, {"application_id": "LN20991231999", "phone_last4": "0001"})
    assert wrong_secret == unknown_app


def test_last_allowed_failure_ends_the_form_for_a_handoff(domain: dict[str, Any]) -> None:
    said, slots = form_turn(domain, {"application_id": GOOD_APP, "phone_last4": "9999"},
                            slots={"verification_failures": 2.0})
    assert slots["verification_failures"] == 3.0
    assert slots["requested_slot"] is None
    assert said == []  # the handoff text comes from action_report_progress


def test_bad_format_is_rejected_with_the_format(domain: dict[str, Any]) -> None:
    said, slots = form_turn(domain, {"application_id": "LN123"})
    assert slots["application_id"] is None and slots["requested_slot"] == "application_id"
    assert "LN加11位数字" in said[0]
    said, slots = form_turn(domain, {"phone": GOOD_PHONE, "id_last6": "12"})
    assert slots["id_last6"] is None and slots["requested_slot"] == "id_last6"


def test_report_after_success_shows_only_own_applications(domain: dict[str, Any],
                                                         loan_db: str) -> None:
    repo = LoanRepository(loan_db)
    own = list(repo.verify_identity(phone=GOOD_PHONE, id_last6=GOOD_ID6).application_ids)
    tracker = make_tracker("", "provide_identity", slots={
        "verified": True, "borrower_id": "B0001", "application_ids": own})
    messages, events = run_action(ActionReportProgress(), tracker, domain)
    text = texts(messages)[0]
    for app_id in own:
        app = repo.get_application(app_id)
        assert app is not None
        assert app_id in text and app.status_label in text
        for event in repo.timeline(app_id):
            assert event.status_label in text
        for doc in app.missing_documents:
            assert doc in text
    assert "LN20261122001" not in text  # another borrower's application
    assert slot_events(events)["topic"] == "progress"


def test_report_with_someone_elses_application_id(domain: dict[str, Any]) -> None:
    tracker = make_tracker("", "ask_progress", slots={
        "verified": True, "borrower_id": "B0001", "application_ids": [GOOD_APP],
        "application_id": "LN20261122001"})
    text = texts(run_action(ActionReportProgress(), tracker, domain)[0])[0]
    assert "未在您名下找到" in text and "LN20261122001" not in text.split("：", 1)[1]


def test_report_without_verification_reveals_nothing(domain: dict[str, Any]) -> None:
    tracker = make_tracker("", "provide_identity", slots={
        "application_id": GOOD_APP, "application_ids": [GOOD_APP], "verification_failures": 1.0})
    messages, events = run_action(ActionReportProgress(), tracker, domain)
    assert GOOD_APP not in " ".join(texts(messages))
    assert not any(m.get("custom") for m in messages)
    assert not any(e.get("event") == "pause" for e in events)


def test_report_after_too_many_failures_hands_off(domain: dict[str, Any]) -> None:
    tracker = make_tracker("", "provide_identity", slots={"verification_failures": 3.0})
    messages, events = run_action(ActionReportProgress(), tracker, domain)
    assert "人工客服" in texts(messages)[0]
    handoff = next(m["custom"]["handoff"] for m in messages if m.get("custom"))
    assert handoff["reason"] == "verification_failed"
    assert events[-1]["event"] == "pause"


def test_prompt_actions_render_texts(domain: dict[str, Any]) -> None:
    messages, _ = run_action(ActionAskIdLast6(), make_tracker("13800000001"), domain)
    assert "身份证号的后六位" in texts(messages)[0]
