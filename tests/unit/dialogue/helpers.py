"""Helpers for the dialogue tests: build a tracker, run an action, read what it sent."""

from __future__ import annotations

import asyncio
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

ROOT = Path(__file__).resolve().parents[3]
DOMAIN_DIR = ROOT / "bot" / "domain"

# Seeded borrower B0001 (actions/store/seed.py): phone 13800000001, ID last six 123456,
# applications LN20261123001 (credit, submitted) and LN20261121002.
GOOD_APP = "LN20261123001"
GOOD_PHONE = "13800000001"
GOOD_ID6 = "123456"


@lru_cache(maxsize=1)
def load_domain() -> dict[str, Any]:
    """bot/domain merged, parsed once (tests must not mutate it)."""
    merged: dict[str, Any] = {"responses": {}, "slots": {}, "forms": {}, "actions": []}
    for path in sorted(DOMAIN_DIR.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key in ("responses", "slots", "forms"):
            merged[key].update(data.get(key) or {})
        merged["actions"] += data.get("actions") or []
    return merged


def make_tracker(
    text: str = "",
    intent: str | None = None,
    entities: list[dict[str, Any]] | None = None,
    slots: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
    active_loop: str | None = None,
    confidence: float = 0.95,
) -> Tracker:
    """A tracker whose latest message is `text` with the given NLU result and slots."""
    all_slots: dict[str, Any] = {
        name: spec.get("initial_value") for name, spec in load_domain()["slots"].items()
    }
    all_slots["requested_slot"] = None
    all_slots.update(slots or {})
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": confidence} if intent else {},
        "entities": entities or [],
    }
    history = list(events or []) + [{"event": "user", "text": text, "parse_data": latest}]
    return Tracker(
        sender_id="test",
        slots=all_slots,
        latest_message=latest,
        events=history,
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


def run_action(
    action: Action, tracker: Tracker, domain: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run an action; returns (messages sent, events returned)."""
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, domain))
    return dispatcher.messages, list(events)


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m["text"] for m in messages if m.get("text")]


def slot_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def entity(name: str, value: Any) -> dict[str, Any]:
    return {"entity": name, "value": value}
