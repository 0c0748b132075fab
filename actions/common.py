"""Shared plumbing for every custom action: script, sensitive-intent check, error replies.

`LoanAction.run` is the one place that decides the reply script and catches the store's and
calculators' errors, so no action can crash a conversation or answer in the wrong script.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.errors import LoanbotError
from actions.handoff_policy import REASON_SENSITIVE, decide
from actions.script import SCRIPT_SLOT, ScriptedDispatcher, tracker_script
from actions.settings import ROOT, load_settings
from bot.text import normalise

log = logging.getLogger(__name__)

DOMAIN_DIR = ROOT / "bot" / "domain"
GENERIC_ERROR = "系统暂时无法处理您的请求，请稍后再试，或回复“转人工”联系人工客服。"


@lru_cache(maxsize=4)
def repository(url: str, reference_ttl: float) -> Any:
    """One LoanRepository (and connection pool) per database URL and process."""
    from actions.store.repository import LoanRepository

    return LoanRepository(url, reference_ttl=reference_ttl)


def current_repository() -> Any:
    settings = load_settings()
    return repository(settings.loan_db_url, settings.reference_ttl)


def latest_intent(tracker: Tracker) -> tuple[str | None, float]:
    """Name and confidence of the latest user intent."""
    intent = (tracker.latest_message or {}).get("intent") or {}
    confidence = intent.get("confidence")
    return intent.get("name"), float(confidence) if confidence is not None else 0.0


def latest_text(tracker: Tracker) -> str:
    """The latest user text, normalised (Simplified, half-width) for keyword checks."""
    return normalise(str((tracker.latest_message or {}).get("text") or ""))


def latest_entity_values(tracker: Tracker, entity: str) -> list[Any]:
    return [
        e.get("value")
        for e in (tracker.latest_message or {}).get("entities") or []
        if e.get("entity") == entity
    ]


def mentions(text: str, *words: str) -> bool:
    return any(word in text for word in words)


TEXTS_FILE = DOMAIN_DIR / "texts.yml"


@lru_cache(maxsize=1)
def load_texts(path: Path = TEXTS_FILE) -> dict[str, list[dict[str, Any]]]:
    """The reply templates of bot/domain/texts.yml (read once per process)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    texts = data.get("texts")
    if not isinstance(texts, dict):
        raise ValueError(f"{path}: expected a 'texts' mapping")
    return texts


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def render_template(name: str, **values: Any) -> tuple[str, list[dict[str, Any]]]:
    """Text and buttons of a template, with {placeholders} filled.

    The first variation is used so answers are predictable and testable.
    """
    variations = load_texts().get(name)
    if not variations:
        raise KeyError(f"template {name} is not in {TEXTS_FILE}")
    first = variations[0]
    text = re.sub(r"\{(\w+)\}", lambda m: str(_Blank(values)[m.group(1)]), first.get("text", ""))
    return text, list(first.get("buttons") or [])


def utter_template(out: ScriptedDispatcher, name: str, **values: Any) -> None:
    text, buttons = render_template(name, **values)
    out.text(text, buttons)


class LoanAction(Action, ABC):
    """Base action: sets up the scripted dispatcher, honours sensitive intents, never crashes.

    Any intent that config/handoff.yml lists as sensitive hands off from whichever action a
    rule routed it to, so the list lives only in the configuration file.
    """

    #: informational answers reset the unresolved-turn counter
    resets_unresolved = False
    #: prompts run by a form mid-turn must not re-judge the user's intent
    checks_sensitive = True

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        script = tracker_script(tracker)
        out = ScriptedDispatcher(dispatcher, script)
        events: list[EventType] = []
        intent, _ = latest_intent(tracker)
        try:
            decision = decide(intent, tracker.get_slot("unresolved_turns"))
            if self.checks_sensitive and decision.handoff and decision.reason == REASON_SENSITIVE:
                from actions.handoff import handoff_events

                events = handoff_events(out, tracker, domain, REASON_SENSITIVE)
            else:
                events = self.respond(out, tracker, domain)
                if self.resets_unresolved and tracker.get_slot("unresolved_turns"):
                    events.append(SlotSet("unresolved_turns", 0.0))
        except LoanbotError as exc:
            log.warning("%s failed: %r", self.name(), exc)
            out.text(str(exc))
        except Exception:  # a borrower must get an answer, never a silent crash
            log.exception("%s crashed", self.name())
            out.text(GENERIC_ERROR)
        if tracker.get_slot(SCRIPT_SLOT) != script:
            # after a leading rewind (core fallback), which would otherwise undo it
            at = 1 if events and events[0].get("event") == "rewind" else 0
            events.insert(at, SlotSet(SCRIPT_SLOT, script))
        return events

    @abstractmethod
    def respond(
        self, out: ScriptedDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        """Send the reply through `out` and return the events to apply."""
