"""The handoff signal (docs/contracts.md) and the actions that send it.

Order matters to the gateway: borrower-facing text first, then the {"handoff": ...} payload,
then ConversationPaused so Rasa stays silent until the gateway posts "resume".
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import (
    ActionExecuted,
    ActiveLoop,
    ConversationPaused,
    EventType,
    SlotSet,
    UserUtteranceReverted,
)

from actions.common import LoanAction, latest_intent, utter_template
from actions.handoff_policy import REASON_UNRESOLVED, decide
from actions.script import ScriptedDispatcher

# Context an agent needs to pick the conversation up. Identity answers (phone_last4, id_last6)
# are secrets and never leave the bot; the phone number is masked.
HANDOFF_SLOTS = (
    "product",
    "amount",
    "term",
    "repayment_method",
    "application_id",
    "phone",
    "topic",
    "verified",
    "verification_failures",
)


def _json_value(name: str, value: Any) -> Any:
    if name in ("amount", "term") and isinstance(value, str):
        try:  # entity values may reach the slot as numeric strings
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if name == "phone" and isinstance(value, str) and len(value) == 11:
        return value[:3] + "****" + value[-4:]
    return value


def handoff_payload(reason: str, tracker: Tracker, unresolved_turns: int) -> dict[str, Any]:
    """The custom payload of the handoff signal."""
    intent, confidence = latest_intent(tracker)
    slots = {
        name: _json_value(name, tracker.get_slot(name))
        for name in HANDOFF_SLOTS
        if tracker.get_slot(name) is not None
    }
    return {
        "handoff": {
            "reason": reason,
            "intent": intent,
            "confidence": round(confidence, 4),
            "unresolved_turns": unresolved_turns,
            "slots": slots,
        }
    }


def handoff_events(
    out: ScriptedDispatcher,
    tracker: Tracker,
    domain: dict[str, Any],
    reason: str,
    unresolved_turns: int | None = None,
) -> list[EventType]:
    """Send text + payload and pause; also close any open form so a resumed chat starts clean.

    ConversationPaused is the last event, as docs/contracts.md requires.
    """
    count = int(tracker.get_slot("unresolved_turns") or 0) if unresolved_turns is None else (
        unresolved_turns
    )
    utter_template(out, f"handoff_{reason}")
    out.custom(handoff_payload(reason, tracker, count))
    events: list[EventType] = [SlotSet("unresolved_turns", float(count))]
    if tracker.active_loop.get("name"):
        events += [ActiveLoop(None), SlotSet("requested_slot", None)]
    # Rasa predicts nothing after a pause, so it never logs the action_listen that normally
    # precedes the next user message; without it the first message after "resume" matches no
    # rule and falls into the core fallback. Log it here, then pause.
    events += [ActionExecuted("action_listen"), ConversationPaused()]
    return events


class ActionHandoff(LoanAction):
    """Target of the sensitive-intent rules; LoanAction.run does the handoff.

    Reached with an intent that is no longer configured as sensitive, it asks how to help.
    """

    def name(self) -> str:
        return "action_handoff"

    def respond(
        self, out: ScriptedDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        utter_template(out, "unresolved")
        return []


class ActionHandleUnresolved(LoanAction):
    """Counts an unresolved turn; hands off at unresolved_turn_limit."""

    def name(self) -> str:
        return "action_handle_unresolved"

    def respond(
        self, out: ScriptedDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        intent, _ = latest_intent(tracker)
        decision = decide(intent, tracker.get_slot("unresolved_turns"))
        if decision.handoff:
            return handoff_events(out, tracker, domain, REASON_UNRESOLVED,
                                  decision.unresolved_turns)
        utter_template(out, "unresolved_not_helpful" if intent == "not_helpful" else "unresolved")
        return [SlotSet("unresolved_turns", float(decision.unresolved_turns))]


class ActionDefaultFallback(LoanAction):
    """Replaces Rasa's core fallback (no rule or story predicts an action).

    Such a turn is unresolved too, so it is counted like nlu_fallback and answered from
    texts.yml in the borrower's script. As Rasa's own fallback does, it reverts the user message
    first, so the conversation continues from where it was; the counter and any handoff events
    come after the revert so they are kept.
    """

    def name(self) -> str:
        return "action_default_fallback"

    def respond(
        self, out: ScriptedDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        decision = decide("nlu_fallback", tracker.get_slot("unresolved_turns"))
        if decision.handoff:
            return [UserUtteranceReverted()] + handoff_events(
                out, tracker, domain, REASON_UNRESOLVED, decision.unresolved_turns
            )
        utter_template(out, "unresolved")
        return [UserUtteranceReverted(), SlotSet("unresolved_turns",
                                                 float(decision.unresolved_turns))]
