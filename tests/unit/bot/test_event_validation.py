"""bot/event_validation.py: the per-type fast path accepts exactly what Rasa's schema accepts.

The fast path may only say yes when jsonschema against Rasa's full schema says yes (else
tuning would let through what Rasa refuses), and it must say yes for real events (else it
is no faster)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.event_validation import ActionResultValidator, EventListValidator

pytest.importorskip("rasa")

from rasa.core.actions.action import RemoteAction  # noqa: E402
from rasa.shared.core import events as rasa_events  # noqa: E402
from rasa.shared.utils.schemas.events import EVENTS_SCHEMA  # noqa: E402

RESULTS = ActionResultValidator(RemoteAction.action_response_format_spec())
EVENT_LISTS = EventListValidator(EVENTS_SCHEMA)


def real_events() -> list[dict[str, Any]]:
    """Events as Rasa and rasa-sdk serialise them, one or more of every common type."""
    made = [
        rasa_events.UserUttered("借5万", {"name": "ask_rate", "confidence": 0.9},
                                [{"entity": "amount", "value": 50000, "start": 1, "end": 3}]),
        rasa_events.ActionExecuted("action_listen", policy="RulePolicy", confidence=1.0),
        rasa_events.SlotSet("amount", 50000),
        rasa_events.SlotSet("product", None),
        rasa_events.SlotSet("schedule", [{"period": 1, "payment": 4414.42}]),
        rasa_events.BotUttered("您好", {"buttons": [{"title": "是", "payload": "/affirm"}]}),
        rasa_events.ActiveLoop("progress_form"),
        rasa_events.ActiveLoop(None),
        rasa_events.FollowupAction("action_listen"),
        rasa_events.ConversationPaused(),
        rasa_events.ConversationResumed(),
        rasa_events.Restarted(),
        rasa_events.UserUtteranceReverted(),
        rasa_events.ActionReverted(),
        rasa_events.AllSlotsReset(),
        rasa_events.SessionStarted(),
        rasa_events.ActionExecutionRejected("validate_progress_form"),
        rasa_events.LoopInterrupted(True),
        rasa_events.EntitiesAdded([{"entity": "term", "value": 12}]),
        rasa_events.AgentUttered("人工客服", {}),
    ]
    return [e.as_dict() for e in made]


REAL = real_events()
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=6,
)
FIELDS = st.sampled_from(["event", "name", "value", "text", "timestamp", "metadata",
                          "entities", "policy", "confidence", "parse_data", "hide_rule_turn"])


@st.composite
def events(draw: st.DrawFn) -> Any:
    """A real event, often broken: a field dropped, retyped, or the name changed."""
    event = dict(draw(st.sampled_from(REAL)))
    for _ in range(draw(st.integers(0, 2))):
        field = draw(FIELDS)
        change = draw(st.sampled_from(["drop", "set"]))
        if change == "drop":
            event.pop(field, None)
        else:
            event[field] = draw(JSON | st.sampled_from(["slot", "user", "bot", "nonsense"]))
    return draw(st.sampled_from([event, event, event, [event], "x", None]))


def test_real_events_take_the_fast_path() -> None:
    assert EVENT_LISTS.accepts(REAL)
    assert RESULTS.accepts({"events": REAL, "responses": [{"text": "好的"}]})
    assert RESULTS.accepts({"responses": []})


@settings(max_examples=400, deadline=None)
@given(st.lists(events(), max_size=4))
def test_the_fast_path_never_accepts_what_rasa_refuses(batch: list[Any]) -> None:
    if EVENT_LISTS.accepts(batch):
        assert EVENT_LISTS.full.is_valid(batch)
    elif all(isinstance(e, dict) for e in batch) and EVENT_LISTS.full.is_valid(batch):
        pytest.fail(f"valid events missed the fast path: {batch!r}")


@settings(max_examples=300, deadline=None)
@given(st.lists(events(), max_size=3), st.sampled_from(["list", "missing", "scalar"]),
       st.sampled_from([[], [{"text": "好"}], [{"text": 3}], "x"]))
def test_action_results_agree_with_rasas_schema(batch: list[Any], shape: str,
                                               responses: Any) -> None:
    result: Any = {"responses": responses}
    if shape == "list":
        result["events"] = batch
    elif shape == "scalar":
        result["events"] = "events"
    if RESULTS.accepts(result):
        assert RESULTS.full.is_valid(result)
    else:
        # what the fast path leaves to the full schema is either invalid, or has an event
        # that is not an object with a string name (never produced by Rasa or rasa-sdk)
        events_ok = isinstance(result.get("events", []), list) and all(
            isinstance(e, dict) and isinstance(e.get("event"), str)
            for e in result.get("events", [])
        )
        assert not (events_ok and RESULTS.full.is_valid(result)), result
