"""The split domain, the action server and the reply templates agree with each other."""

from __future__ import annotations

import pytest
import yaml
from rasa.shared.core.domain import Domain
from rasa_sdk.executor import ActionExecutor

from actions.common import load_texts, render_template
from actions.conversation import CHITCHAT_INTENTS
from actions.handoff import HANDOFF_SLOTS
from actions.handoff_policy import REASON_SENSITIVE, REASON_UNRESOLVED, REASON_VERIFICATION
from actions.progress import IDENTITY_SLOTS
from tests.unit.dialogue.helpers import DOMAIN_DIR, ROOT


@pytest.fixture(scope="module")
def rasa_domain() -> Domain:
    return Domain.load(str(DOMAIN_DIR))


def test_domain_actions_are_exactly_the_registered_actions(rasa_domain: Domain) -> None:
    executor = ActionExecutor()
    executor.register_package("actions")
    # rasa-sdk registers every Action subclass imported in the process, so actions that other
    # tests define (tests/integration/inprocess_sample_actions.py) are left out by module.
    ours = {name for name, run in executor.actions.items()
            if type(run.__self__).__module__.split(".")[0] == "actions"}
    assert ours == set(rasa_domain.user_actions) - set(rasa_domain.responses)


def test_texts_file_is_invisible_to_rasa(rasa_domain: Domain) -> None:
    """Rasa must never utter an unconverted template: it has no responses of its own."""
    assert not Domain.is_domain_file(DOMAIN_DIR / "texts.yml")
    assert rasa_domain.responses == {}
    # the core fallback is ours too (it would otherwise utter utter_default)
    assert "action_default_fallback" in rasa_domain.user_actions


def test_form_slots_exist(rasa_domain: Domain) -> None:
    slots = {slot.name for slot in rasa_domain.slots}
    assert set(rasa_domain.required_slots_for_form("verification_form")) == set(IDENTITY_SLOTS)
    assert set(HANDOFF_SLOTS) <= slots
    assert {"unresolved_turns", "verified", "topic", "reply_script"} <= slots


def test_unresolved_counter_does_not_influence_predictions(rasa_domain: Domain) -> None:
    slot = next(s for s in rasa_domain.slots if s.name == "unresolved_turns")
    assert slot.type_name == "float" and not slot.influence_conversation


def test_nlu_contract_intents_all_have_a_rule() -> None:
    intents = yaml.safe_load((DOMAIN_DIR / "nlu.yml").read_text(encoding="utf-8"))["intents"]
    ruled: set[str] = set()
    for path in (ROOT / "data" / "rules").glob("*.yml"):
        for rule in yaml.safe_load(path.read_text(encoding="utf-8"))["rules"]:
            ruled |= {step["intent"] for step in rule["steps"] if "intent" in step}
    assert set(intents) | {"nlu_fallback"} == ruled


@pytest.mark.parametrize(
    "name",
    [
        *CHITCHAT_INTENTS,
        *(f"ask_{slot}" for slot in IDENTITY_SLOTS),
        *(f"invalid_{slot}" for slot in IDENTITY_SLOTS),
        *(f"handoff_{reason}" for reason in (REASON_SENSITIVE, REASON_UNRESOLVED,
                                             REASON_VERIFICATION)),
        "unresolved", "unresolved_not_helpful", "verified", "verification_failed",
        "verification_unavailable",
    ],
)
def test_every_template_the_actions_use_exists(name: str) -> None:
    text, _ = render_template(name, remaining=2)
    assert text and "{" not in text


def test_no_unused_template() -> None:
    used = {*CHITCHAT_INTENTS, "unresolved", "unresolved_not_helpful", "verified",
            "verification_failed", "verification_unavailable",
            *(f"ask_{s}" for s in IDENTITY_SLOTS), *(f"invalid_{s}" for s in IDENTITY_SLOTS),
            *(f"handoff_{r}" for r in (REASON_SENSITIVE, REASON_UNRESOLVED, REASON_VERIFICATION))}
    assert set(load_texts()) == used
