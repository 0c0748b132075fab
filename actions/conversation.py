"""Chit-chat replies rendered from bot/domain/texts.yml by an action, so they follow the script.

Rasa's own NLG cannot convert a template to Traditional; routing greet/goodbye/... through
this action keeps one Simplified copy of each template and still answers in the borrower's
script (docs/dialogue.md, "Script").
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType

from actions.common import LoanAction, latest_intent, utter_template
from actions.script import ScriptedDispatcher

CHITCHAT_INTENTS = ("greet", "goodbye", "thank", "bot_challenge", "affirm", "deny")


class ActionChitchat(LoanAction):
    """Answers a conversational intent with its template the template named after the intent."""

    def name(self) -> str:
        return "action_chitchat"

    def respond(
        self, out: ScriptedDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        intent, _ = latest_intent(tracker)
        utter_template(out, intent if intent in CHITCHAT_INTENTS else "greet")
        return []
