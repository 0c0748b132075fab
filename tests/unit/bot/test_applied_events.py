"""bot/applied_events.py: the applied events, continued from the last call, are always the very
events (the same objects, in order) Rasa's full fold gives: for conversations grown event by
event with restarts, reverts, loops and loop names that appear late, and for histories changed
under the fold."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("rasa")

from rasa.shared.core.events import (  # noqa: E402
    ActionExecuted,
    ActionExecutionRejected,
    ActionReverted,
    ActiveLoop,
    BotUttered,
    Event,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker  # noqa: E402

from bot import applied_events  # noqa: E402
from tests.unit.bot.patching import restored  # noqa: E402

RASAS = DialogueStateTracker.applied_events  # Rasa's own, before any install


@pytest.fixture()
def patched() -> Iterator[None]:
    with restored(DialogueStateTracker, "applied_events", applied_events._ORIGINAL):
        applied_events.install()
        applied_events.install()  # twice is once
        yield
    applied_events._folds.clear()


def ids(events: list[Any]) -> list[int]:
    return [id(e) for e in events]


def assert_rasas(tracker: DialogueStateTracker) -> list[Any]:
    mine = tracker.applied_events()
    theirs = RASAS(tracker)
    assert ids(mine) == ids(theirs)
    return mine


def random_event(rng: random.Random) -> Event:
    makers = [
        lambda: ActionExecuted("action_listen"),
        lambda: UserUttered("借5万", {"name": "ask_rate", "confidence": 0.9}),
        lambda: ActionExecuted("action_answer_rate"),
        lambda: BotUttered("您好"),
        lambda: SlotSet("product", rng.choice(["信用贷", "车贷"])),
        lambda: ActionExecuted(rng.choice(["identity_form", "callback_form"])),
        lambda: ActiveLoop(rng.choice(["identity_form", "callback_form", None])),
        lambda: ActionExecutionRejected(rng.choice(["identity_form", "callback_form"])),
        lambda: ActionReverted(),
        lambda: UserUtteranceReverted(),
        lambda: Restarted(),
        lambda: SessionStarted(),
    ]
    weights = [6, 6, 4, 3, 3, 4, 3, 1, 1, 1, 0.3, 0.3]
    return rng.choices(makers, weights)[0]()


@pytest.mark.parametrize("seed", range(40))
def test_conversations_grown_event_by_event(patched: None, seed: int) -> None:
    rng = random.Random(seed)
    tracker = DialogueStateTracker(f"s{seed}", [])
    for _ in range(rng.randint(20, 120)):
        # `update` itself asks for the applied events on a revert (it replays them)
        tracker.update(random_event(rng))
        if rng.random() < 0.7:
            assert_rasas(tracker)
    assert_rasas(tracker)
    assert applied_events._folds.get(tracker) is not None


def test_a_loop_named_late_changes_what_came_before(patched: None) -> None:
    """`ActionExecuted("late_form")` before any `ActiveLoop("late_form")` is an ordinary
    action; once the name appears, Rasa treats the earlier ones as that loop's runs."""
    tracker = DialogueStateTracker("late", [])
    for event in [ActionExecuted("action_listen"), UserUttered("hi", {"name": "greet"}),
                  ActionExecuted("late_form"), ActionExecuted("action_listen"),
                  UserUttered("again", {"name": "greet"}), ActionExecuted("late_form")]:
        tracker.update(event)
    before = assert_rasas(tracker)
    tracker.update(ActiveLoop("late_form"))
    after = assert_rasas(tracker)
    assert len(after) != len(before) + 1  # the new name did change the earlier events' fate


def test_a_changed_history_is_folded_afresh(patched: None) -> None:
    rng = random.Random(7)
    tracker = DialogueStateTracker("changed", [])
    for _ in range(40):
        tracker.update(random_event(rng))
    assert_rasas(tracker)
    tracker.events.popleft()  # the first event gone (as a bounded history drops it)
    assert_rasas(tracker)
    tracker.events[5] = ActionExecuted("action_listen")  # an event replaced in place
    assert_rasas(tracker)
    replaced = ActionExecuted("action_answer_rate")
    tracker.events[-1] = replaced  # the newest, which Rasa's fold always keeps
    assert assert_rasas(tracker)[-1] is replaced
    tracker.events.clear()
    assert assert_rasas(tracker) == []


def test_each_call_gets_its_own_list(patched: None) -> None:
    tracker = DialogueStateTracker("own", [])
    for event in [ActionExecuted("action_listen"), UserUttered("hi", {"name": "greet"})]:
        tracker.update(event)
    first = tracker.applied_events()
    first.clear()
    assert len(assert_rasas(tracker)) == 2


def test_a_collected_tracker_takes_its_fold_with_it(patched: None) -> None:
    tracker = DialogueStateTracker("gone", [])
    tracker.update(ActionExecuted("action_listen"))
    tracker.applied_events()
    assert len(applied_events._folds) == 1
    del tracker
    assert not applied_events._folds


def test_subclasses_keep_rasas_method(patched: None) -> None:
    class Special(DialogueStateTracker):
        pass

    tracker = Special("special", [])
    tracker.update(ActionExecuted("action_listen"))
    assert ids(tracker.applied_events()) == ids(RASAS(tracker))
    assert applied_events._folds.get(tracker) is None
