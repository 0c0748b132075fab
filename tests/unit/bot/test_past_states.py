"""bot/past_states.py: the past states continued from the last computation are Rasa's, with
Rasa's sharing of sub-dicts, in whole real conversations and around reverts and restarts."""

from __future__ import annotations

import asyncio
import gc
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("rasa")

from rasa.shared.core.domain import Domain  # noqa: E402
from rasa.shared.core.events import (  # noqa: E402
    ActionExecuted,
    ActionReverted,
    Event,
    Restarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker  # noqa: E402

from bench.utterances import conversations  # noqa: E402
from bot import past_states  # noqa: E402
from tests.stack import seed_loan_db  # noqa: E402
from tests.unit.bot.patching import restored  # noqa: E402

RASAS = Domain.states_for_tracker_history

DOMAIN = Domain.from_yaml("""
version: "3.1"
intents: [greet, ask_rate, inform, bye]
entities: [amount]
slots:
  amount:
    type: float
    mappings: [{type: from_entity, entity: amount}]
  verified:
    type: bool
    influence_conversation: true
    mappings: [{type: custom}]
forms:
  verification_form:
    required_slots: [verified]
responses:
  utter_greet: [{text: 您好}]
  utter_bye: [{text: 再见}]
actions: [action_answer_rate]
""")


@pytest.fixture()
def restore_domain() -> Iterator[None]:
    with restored(Domain, "states_for_tracker_history", past_states._ORIGINAL):
        yield
    past_states._folds.clear()


def alias_pattern(states: list[Any]) -> list[int]:
    """Which sub-dicts are one object: the first position each object was seen at."""
    seen: dict[int, int] = {}
    return [seen.setdefault(id(sub), len(seen)) for state in states for sub in state.values()]


def assert_rasas(tracker: Any, **kwargs: Any) -> list[Any]:
    ours = past_states.states_for_tracker_history(DOMAIN, tracker, **kwargs)
    theirs = RASAS(DOMAIN, tracker, **kwargs)
    assert ours == theirs
    assert alias_pattern(ours) == alias_pattern(theirs)
    return ours


ARGUMENTS = [{}, {"omit_unset_slots": True},
             {"ignore_rule_only_turns": True, "rule_only_data": {"rule_only_slots": ["verified"],
                                                                  "rule_only_loops": []}}]


def turn(i: int, hidden: bool = False) -> list[Event]:
    return [UserUttered(f"第{i}句", {"name": ["greet", "ask_rate", "inform"][i % 3],
                                     "confidence": 0.9},
                        [{"entity": "amount", "value": 1000 * i}]),
            SlotSet("amount", 1000.0 * i),
            ActionExecuted("action_answer_rate", hide_rule_turn=hidden),
            ActionExecuted("action_listen", hide_rule_turn=hidden)]


@pytest.mark.parametrize("arguments", ARGUMENTS)
def test_growing_conversation_with_reverts_and_a_restart(arguments: dict[str, Any]) -> None:
    tracker = DialogueStateTracker.from_events("s", [ActionExecuted("action_listen")],
                                               DOMAIN.slots)
    steps: list[list[Event]] = [turn(0), turn(1, hidden=True), turn(2),
                                [UserUtteranceReverted()], turn(3), [ActionReverted()],
                                [SlotSet("verified", True)], turn(4, hidden=True),
                                [Restarted(), ActionExecuted("action_listen")], turn(5), turn(6)]
    for step in steps:
        for event in step:
            tracker.update(event)
            assert_rasas(tracker, **arguments)
    # a shared rule-only dict is a new argument: the fold starts afresh, still Rasa's
    assert_rasas(tracker, **{**arguments, "rule_only_data": {"rule_only_slots": [],
                                                               "rule_only_loops": []}})


def test_what_is_handed_out_can_be_changed_freely() -> None:
    tracker = DialogueStateTracker.from_events("s", [ActionExecuted("action_listen")] + turn(1)
                                               + turn(2, hidden=True), DOMAIN.slots)
    arguments = ARGUMENTS[2]
    first = assert_rasas(tracker, **arguments)
    for state in first:  # what `_choose_last_user_input` and others do to their copy
        for sub in state.values():
            sub.clear()
        state.clear()
    first.clear()
    assert_rasas(tracker, **arguments)


def test_unusual_values_are_deep_copied() -> None:
    shared = {"intent": "greet", "entities": ["a"]}  # a list: not one of Rasa's values
    states = [{"user": shared}, {"user": shared, "prev_action": {"action_name": "x"}}]
    copied = past_states.handed_out(states)
    assert copied == states and copied[0]["user"] is copied[1]["user"]
    assert copied[0]["user"]["entities"] is not shared["entities"]


def test_a_collected_tracker_takes_its_folds_with_it() -> None:
    past_states._folds.clear()
    tracker = DialogueStateTracker.from_events("s", [ActionExecuted("action_listen")] + turn(1),
                                               DOMAIN.slots)
    assert_rasas(tracker)
    assert len(past_states._folds) == 1
    del tracker
    gc.collect()
    assert not past_states._folds


def test_another_domain_starts_afresh() -> None:
    tracker = DialogueStateTracker.from_events("s", [ActionExecuted("action_listen")] + turn(1),
                                               DOMAIN.slots)
    assert_rasas(tracker)
    other = Domain.from_dict(DOMAIN.as_dict())
    ours = past_states.states_for_tracker_history(other, tracker)
    assert ours == RASAS(other, tracker)
    fold = past_states._folds_of(tracker)[(False, False, id(None))]
    assert fold.domain is other


def test_every_computation_in_real_conversations_is_rasas(
        trained_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        restore_domain: None) -> None:
    """With the SQL tracker store and its kept trackers, as `make run` serves."""
    from rasa.core.agent import Agent
    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.utils.endpoints import EndpointConfig

    from bot import tracker_cache
    from bot.inprocess_actions import InProcessActions

    monkeypatch.setenv("LOAN_DB_URL", seed_loan_db(tmp_path))
    with restored(SQLTrackerStore, "retrieve"), restored(SQLTrackerStore, "save"):
        tracker_cache.install()
        store = SQLTrackerStore(dialect="sqlite", db=str(tmp_path / "tracker.db"))
        agent = Agent.load(str(trained_model), tracker_store=store,
                           action_endpoint=InProcessActions(EndpointConfig()))
        past_states.install()
        ours = Domain.states_for_tracker_history
        checked: list[int] = []
        continued: list[int] = []

        def checking(self: Any, tracker: Any, omit_unset_slots: bool = False,
                     ignore_rule_only_turns: bool = False,
                     rule_only_data: Any = None) -> Any:
            key = past_states.fold_key(omit_unset_slots, ignore_rule_only_turns,
                                       rule_only_data if ignore_rule_only_turns else None)
            folds = past_states._folds_of(tracker)
            before = folds.get(key)
            mine = ours(self, tracker, omit_unset_slots, ignore_rule_only_turns, rule_only_data)
            theirs = RASAS(self, tracker, omit_unset_slots, ignore_rule_only_turns,
                           rule_only_data)
            assert mine == theirs and alias_pattern(mine) == alias_pattern(theirs)
            checked.append(1)
            if before is not None and folds.get(key) is before and before.consumed:
                continued.append(1)  # this call's own fold went on from where it stopped
            # one fold per set of arguments, however long the conversation (RulePolicy's
            # rule-only data is a new dict on every call)
            assert len(folds) <= 2
            return mine

        monkeypatch.setattr(Domain, "states_for_tracker_history", checking)

        async def talk() -> None:
            for i, c in enumerate(itertools.islice(conversations(37), 60)):
                for text in c.turns:
                    await agent.handle_message(
                        UserMessage(text, CollectingOutputChannel(), sender_id=f"p{i}"))

        asyncio.run(talk())
    assert len(checked) > 400 and len(continued) > len(checked) / 2


def test_subclasses_keep_rasas_method(restore_domain: None) -> None:
    past_states.install()

    class OwnDomain(Domain):
        pass

    tracker = DialogueStateTracker.from_events("s", [ActionExecuted("action_listen")] + turn(1),
                                               DOMAIN.slots)
    own = OwnDomain.from_dict(DOMAIN.as_dict())
    assert isinstance(own, OwnDomain)
    past_states._folds.clear()
    own.states_for_tracker_history(tracker)
    assert not past_states._folds  # Rasa's own code ran
