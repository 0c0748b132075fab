"""Actions for tests/integration/test_inprocess_actions.py: the real `actions` package (imported,
so rasa-sdk registers every real action too) plus three that exercise the error paths."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.interfaces import ActionExecutionRejection

import actions  # noqa: F401  (registers the real actions)
import actions.conversation  # noqa: F401
import actions.handoff  # noqa: F401
import actions.info  # noqa: F401
import actions.progress  # noqa: F401
import actions.rate  # noqa: F401
import actions.repayment  # noqa: F401


class ActionTestReject(Action):
    def name(self) -> str:
        return "action_test_reject"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
            domain: dict[str, Any]) -> list[dict[str, Any]]:
        raise ActionExecutionRejection(self.name(), "表单不接受这个值")


class ActionTestCrash(Action):
    def name(self) -> str:
        return "action_test_crash"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
            domain: dict[str, Any]) -> list[dict[str, Any]]:
        raise ValueError("boom")


class ActionTestMutate(Action):
    """Changes the slot value it was given in place: over HTTP that cannot reach Rasa."""

    def name(self) -> str:
        return "action_test_mutate"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
            domain: dict[str, Any]) -> list[dict[str, Any]]:
        ids = tracker.get_slot("application_ids")
        if isinstance(ids, list):
            ids.append("LN-CHANGED")
        dispatcher.utter_message(text="好的", buttons=[{"title": "是", "payload": "/affirm"}])
        return [SlotSet("topic", "progress")]
