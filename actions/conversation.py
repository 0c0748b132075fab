"""Chit-chat replies rendered from bot/domain/texts.yml by an action, so they follow the script.

Rasa's own NLG cannot convert a template to Traditional; routing greet/goodbye/... through
this action keeps one Simplified copy of each template and still answers in the borrower's
script (docs/dialogue.md, "Script").
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType

from actions.common import LoanAction, latest_intent, load_texts, utter_template
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
        # Intents scaffolded by `loanbot new-intent` answer with the template of their name.
        known = intent in CHITCHAT_INTENTS or (intent is not None and intent in load_texts())
        utter_template(out, intent if known and intent else "greet")
        return []
