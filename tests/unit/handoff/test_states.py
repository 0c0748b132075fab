"""The state machine: every (state, event) pair is either the documented move or illegal."""

from __future__ import annotations

import itertools

import pytest

from handoff.errors import ConflictError, IllegalTransition
from handoff.states import SessionEvent, SessionState, allowed_events, apply

# Written out independently of handoff.states.TRANSITIONS on purpose.
EXPECTED = {
    ("bot", "handoff_requested"): "queued",
    ("bot", "bot_unavailable"): "queued",
    ("queued", "claimed"): "assigned",
    ("queued", "closed_resolved"): "closed",
    ("assigned", "transferred"): "queued",
    ("assigned", "agent_lost"): "queued",
    ("assigned", "closed_resolved"): "closed",
    ("assigned", "returned_to_bot"): "bot",
    ("closed", "borrower_returned"): "bot",
}

PAIRS = list(itertools.product([s.value for s in SessionState], [e.value for e in SessionEvent]))


def test_every_state_and_event_is_covered() -> None:
    assert len(PAIRS) == 4 * 8


@pytest.mark.parametrize(("state", "event"), [p for p in PAIRS if p in EXPECTED])
def test_legal_transition(state: str, event: str) -> None:
    assert apply(state, event) == SessionState(EXPECTED[(state, event)])
    assert apply(SessionState(state), SessionEvent(event)).value == EXPECTED[(state, event)]


@pytest.mark.parametrize(("state", "event"), [p for p in PAIRS if p not in EXPECTED])
def test_illegal_transition(state: str, event: str) -> None:
    with pytest.raises(IllegalTransition) as info:
        apply(state, event)
    assert info.value.state == state and info.value.event == event
    assert isinstance(info.value, ConflictError)


@pytest.mark.parametrize(("state", "event"), [("nope", "claimed"), ("bot", "explode")])
def test_unknown_names_are_illegal(state: str, event: str) -> None:
    with pytest.raises(IllegalTransition):
        apply(state, event)


def test_handoff_back_to_bot_and_handoff_again() -> None:
    state = SessionState.BOT
    for event in ["handoff_requested", "claimed", "returned_to_bot", "handoff_requested",
                  "claimed", "agent_lost", "claimed", "closed_resolved", "borrower_returned",
                  "bot_unavailable"]:
        state = apply(state, event)
    assert state is SessionState.QUEUED


def test_allowed_events_match_table() -> None:
    for state in SessionState:
        expected = {e for (s, e) in EXPECTED if s == state.value}
        assert {e.value for e in allowed_events(state)} == expected
