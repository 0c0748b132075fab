"""Answer in the borrower's script: Traditional in → Traditional out.

Every action sends through `ScriptedDispatcher`, so no reply can forget the conversion.
Template responses are never uttered by Rasa directly (see `actions.conversation`), because
Rasa's NLG cannot convert them.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.text import detect_script, to_script

SIMPLIFIED = "simplified"
TRADITIONAL = "traditional"
SCRIPT_SLOT = "reply_script"


def is_script_neutral(text: str) -> bool:
    """True when the text reads the same in both scripts ("36期", "12345"), so it says nothing."""
    return to_script(text, TRADITIONAL) == text and detect_script(text) == SIMPLIFIED


def script_for_text(text: str, previous: str | None) -> str:
    """The script to answer in: the text's own, or the conversation's so far when neutral."""
    if not text or is_script_neutral(text):
        return previous if previous in (SIMPLIFIED, TRADITIONAL) else SIMPLIFIED
    return detect_script(text)


# Set by bot.components.text_normaliser: Rasa's parse data carries the normalised (Simplified)
# text under "text", and the borrower's own text under this key.
ORIGINAL_TEXT_KEY = "original_text"


def original_text(tracker: Tracker) -> str:
    """The latest message as the borrower typed it (button payloads bypass NLU: no original)."""
    message = tracker.latest_message or {}
    return str(message.get(ORIGINAL_TEXT_KEY) or message.get("text") or "")


def tracker_script(tracker: Tracker) -> str:
    """The borrower's script from the original text of the latest message."""
    return script_for_text(original_text(tracker), tracker.get_slot(SCRIPT_SLOT))


def convert(text: str, script: str) -> str:
    """Replies are written in Simplified; convert only when the borrower wrote Traditional."""
    return to_script(text, script) if script == TRADITIONAL else text


class ScriptedDispatcher:
    """Wraps rasa-sdk's dispatcher and converts every borrower-visible string."""

    def __init__(self, inner: CollectingDispatcher, script: str) -> None:
        self.inner = inner
        self.script = script

    def localise(self, text: str) -> str:
        """A string in the borrower's script, for labels inside custom payloads."""
        return convert(text, self.script)

    def text(self, text: str, buttons: list[dict[str, Any]] | None = None) -> None:
        converted = [
            {**button, "title": convert(str(button["title"]), self.script)}
            for button in buttons or []
        ]
        self.inner.utter_message(text=convert(text, self.script), buttons=converted or None)

    def custom(self, payload: dict[str, Any]) -> None:
        """Machine-readable payloads (handoff signal, schedule table) go out unchanged."""
        self.inner.utter_message(json_message=payload)
