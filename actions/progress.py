"""ask_progress: verification_form, then the verified borrower's applications.

Nothing about an application is read before LoanRepository.verify_identity passes. A failed
check never says which field was wrong, clears every identity slot, and after
verification_attempt_limit failures the report action hands off (reason verification_failed).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import REQUESTED_SLOT, FormValidationAction

from actions.common import LoanAction, current_repository, utter_template
from actions.errors import LoanbotError
from actions.handoff import handoff_events
from actions.handoff_policy import REASON_VERIFICATION, current_policy, verification_exhausted
from actions.replies import progress_text
from actions.script import ScriptedDispatcher, tracker_script
from actions.store.repository import (
    normalise_application_id,
    normalise_id_last6,
    normalise_phone,
    normalise_phone_last4,
)

IDENTITY_SLOTS = ("application_id", "phone", "phone_last4", "id_last6")
MAX_SHOWN = 3


def identity_slots_needed(slots: dict[str, Any]) -> list[str]:
    """The locator and the secret the store accepts for what the borrower has given so far.

    A phone number is proved by the ID-card last six (its own last four prove nothing); an
    application id by the phone's last four or the ID-card last six.
    """
    if slots.get("verified"):
        return []
    if slots.get("phone") and not slots.get("application_id"):
        return ["phone", "id_last6"]
    if slots.get("id_last6") and not slots.get("phone_last4"):
        return ["application_id", "id_last6"]
    if slots.get("application_id") and slots.get("phone") and not slots.get("phone_last4"):
        return ["application_id", "phone"]  # the full number proves the application too
    return ["application_id", "phone_last4"]


class ValidateVerificationForm(FormValidationAction):
    """Validates identity formats and runs the identity check once both parts are in."""

    def name(self) -> str:
        return "validate_verification_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> list[str]:
        return identity_slots_needed(tracker.slots)

    def _check(
        self,
        slot: str,
        normaliser: Callable[[object], str],
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> dict[str, Any]:
        try:
            return {slot: normaliser(str(value))}
        except LoanbotError:
            out = ScriptedDispatcher(dispatcher, tracker_script(tracker))
            utter_template(out, f"invalid_{slot}")
            return {slot: None}

    def validate_application_id(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        return self._check("application_id", normalise_application_id, value, dispatcher,
                           tracker, domain)

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        return self._check("phone", normalise_phone, value, dispatcher, tracker, domain)

    def validate_phone_last4(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        return self._check("phone_last4", normalise_phone_last4, value, dispatcher, tracker,
                           domain)

    def validate_id_last6(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        return self._check("id_last6", normalise_id_last6, value, dispatcher, tracker, domain)

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        """Validate, then verify when complete; emits exactly one requested_slot event."""
        events: list[EventType] = list(await self.get_validation_events(dispatcher, tracker,
                                                                         domain))
        tracker.add_slots(events)
        needed = identity_slots_needed(tracker.slots)
        missing = [slot for slot in needed if not tracker.get_slot(slot)]
        if missing:
            return events + [SlotSet(REQUESTED_SLOT, missing[0])]
        if not needed:  # already verified in this session
            return events + [SlotSet(REQUESTED_SLOT, None)]
        out = ScriptedDispatcher(dispatcher, tracker_script(tracker))
        return events + self._verify(out, tracker, domain, needed)

    def _verify(
        self, out: ScriptedDispatcher, tracker: Tracker, domain: dict[str, Any], needed: list[str]
    ) -> list[EventType]:
        given = {slot: str(tracker.get_slot(slot)) for slot in needed}
        try:
            result = current_repository().verify_identity(**given)
        except LoanbotError as exc:
            out.text(str(exc))
            return [SlotSet(REQUESTED_SLOT, None)]
        if result.ok:
            utter_template(out, "verified")
            return [
                SlotSet("verified", True),
                SlotSet("borrower_id", result.borrower_id),
                SlotSet("application_ids", list(result.application_ids)),
                SlotSet("verification_failures", 0.0),
                SlotSet("phone_last4", None),
                SlotSet("id_last6", None),
                SlotSet(REQUESTED_SLOT, None),
            ]
        failures = int(tracker.get_slot("verification_failures") or 0) + 1
        cleared: list[EventType] = [SlotSet(slot, None) for slot in IDENTITY_SLOTS]
        cleared.append(SlotSet("verification_failures", float(failures)))
        if verification_exhausted(failures):
            return cleared + [SlotSet(REQUESTED_SLOT, None)]
        remaining = current_policy().verification_attempt_limit - failures
        utter_template(out, "verification_failed", remaining=remaining)
        return cleared + [SlotSet(REQUESTED_SLOT, "application_id")]


class _AskSlot(LoanAction):
    """Form prompt rendered by an action so it follows the borrower's script."""

    checks_sensitive = False

    @property
    @abstractmethod
    def slot(self) -> str:
        """The slot this prompt asks for."""

    def name(self) -> str:
        return f"action_ask_{self.slot}"

    def respond(
        self, out: ScriptedDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        utter_template(out, f"ask_{self.slot}")
        return []


class ActionAskApplicationId(_AskSlot):
    slot = "application_id"


class ActionAskPhone(_AskSlot):
    slot = "phone"


class ActionAskPhoneLast4(_AskSlot):
    slot = "phone_last4"


class ActionAskIdLast6(_AskSlot):
    slot = "id_last6"


def progress_report(borrower_application_ids: list[str], asked_for: str | None,
                    repo: Any) -> str:
    """The verified borrower's applications; only ids verify_identity returned are read."""
    if not borrower_application_ids:
        return "您名下暂无贷款申请记录。"
    lines: list[str] = []
    ids = borrower_application_ids
    if asked_for:
        if asked_for in ids:
            ids = [asked_for]
        else:
            lines.append("未在您名下找到该申请编号，以下是您名下的申请：")
    for app_id in ids[:MAX_SHOWN]:
        application = repo.get_application(app_id)
        if application is not None:
            lines.append(progress_text(application, repo.timeline(app_id)))
    if not lines:
        return "暂未查询到您的申请信息，请稍后再试。"
    if len(ids) > MAX_SHOWN:
        lines.append(f"您共有{len(ids)}笔申请，以上为最近{MAX_SHOWN}笔；查询其他申请请提供申请编号。")
    return "\n\n".join(lines)


class ActionReportProgress(LoanAction):
    """Runs when verification_form ends: report, hand off after too many failures, or explain."""

    def name(self) -> str:
        return "action_report_progress"

    def respond(
        self, out: ScriptedDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if tracker.get_slot("verified"):
            ids = [str(i) for i in tracker.get_slot("application_ids") or []]
            asked = tracker.get_slot("application_id")
            out.text(progress_report(ids, str(asked) if asked else None, current_repository()))
            events: list[EventType] = [SlotSet("topic", "progress")]
            if tracker.get_slot("unresolved_turns"):
                events.append(SlotSet("unresolved_turns", 0.0))
            return events
        if verification_exhausted(tracker.get_slot("verification_failures")):
            return handoff_events(out, tracker, domain, REASON_VERIFICATION)
        utter_template(out, "verification_unavailable")
        return []
