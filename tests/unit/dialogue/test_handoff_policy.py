"""The handoff decision as pure functions, without Rasa."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from actions import handoff_policy
from actions.handoff_policy import (
    REASON_SENSITIVE,
    REASON_UNRESOLVED,
    HandoffPolicy,
    decide,
    load_policy,
    parse_policy,
    verification_exhausted,
)
from tests.unit.dialogue.helpers import ROOT

CONFIG = yaml.safe_load((ROOT / "config" / "handoff.yml").read_text(encoding="utf-8"))
POLICY = HandoffPolicy(unresolved_turn_limit=3, verification_attempt_limit=3,
                       sensitive_intents=frozenset({"complaint", "report_fraud"}))


def test_load_policy_reads_the_shared_config_file() -> None:
    policy = load_policy(ROOT / "config" / "handoff.yml")
    assert policy.sensitive_intents == frozenset(CONFIG["sensitive_intents"])
    assert policy.unresolved_turn_limit == CONFIG["unresolved_turn_limit"]
    assert policy.verification_attempt_limit == CONFIG["verification_attempt_limit"]


@pytest.mark.parametrize("intent", CONFIG["sensitive_intents"])
def test_every_configured_sensitive_intent_hands_off_at_once(intent: str) -> None:
    decision = decide(intent, 0, load_policy(ROOT / "config" / "handoff.yml"))
    assert decision.handoff and decision.reason == REASON_SENSITIVE
    assert decision.unresolved_turns == 0


@pytest.mark.parametrize("intent", ["nlu_fallback", "out_of_scope", "not_helpful"])
def test_unresolved_turns_count_and_hand_off_at_the_limit(intent: str) -> None:
    first = decide(intent, 0, POLICY)
    second = decide(intent, first.unresolved_turns, POLICY)
    third = decide(intent, second.unresolved_turns, POLICY)
    assert [first.handoff, second.handoff, third.handoff] == [False, False, True]
    assert [first.unresolved_turns, second.unresolved_turns, third.unresolved_turns] == [1, 2, 3]
    assert third.reason == REASON_UNRESOLVED and first.reason is None
    assert first.unresolved


def test_rasa_float_slot_values_and_none_are_accepted() -> None:
    assert decide("nlu_fallback", 2.0, POLICY).handoff
    assert decide("nlu_fallback", None, POLICY).unresolved_turns == 1


@pytest.mark.parametrize("intent", ["ask_rate", "greet", "inform", None])
def test_other_intents_neither_count_nor_hand_off(intent: str | None) -> None:
    decision = decide(intent, 2, POLICY)
    assert not decision.handoff and not decision.unresolved
    assert decision.unresolved_turns == 2


def test_the_limit_comes_from_the_policy() -> None:
    strict = HandoffPolicy(1, 1, frozenset())
    assert decide("out_of_scope", 0, strict).handoff
    assert not decide("complaint", 0, strict).handoff  # not sensitive in this policy


def test_verification_exhausted_at_the_limit() -> None:
    assert not verification_exhausted(2, POLICY)
    assert verification_exhausted(3.0, POLICY)
    assert not verification_exhausted(None, POLICY)


@pytest.mark.parametrize(
    "raw",
    [
        [],
        {"unresolved_turn_limit": 0, "verification_attempt_limit": 3, "sensitive_intents": []},
        {"unresolved_turn_limit": "3", "verification_attempt_limit": 3, "sensitive_intents": []},
        {"unresolved_turn_limit": 3, "verification_attempt_limit": True, "sensitive_intents": []},
        {"unresolved_turn_limit": 3, "verification_attempt_limit": 3, "sensitive_intents": "x"},
        {"verification_attempt_limit": 3},
    ],
)
def test_a_broken_policy_fails_loudly(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_policy(raw)


def test_policy_file_is_overridable_by_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "handoff.yml"
    path.write_text(
        "unresolved_turn_limit: 2\nverification_attempt_limit: 5\n"
        "sensitive_intents: [ask_overdue]\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("HANDOFF_POLICY_FILE", str(path))
    policy = handoff_policy.current_policy()
    assert policy.unresolved_turn_limit == 2 and policy.verification_attempt_limit == 5
    assert decide("ask_overdue", 0).reason == REASON_SENSITIVE
    assert decide("nlu_fallback", 1).handoff
