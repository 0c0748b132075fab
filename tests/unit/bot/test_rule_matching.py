"""bot/rule_matching.py: the rule search gives Rasa's keys, in Rasa's iteration order, for
the states real conversations produce and for random rules and states."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("rasa")

from rasa.core.policies.rule_policy import RulePolicy  # noqa: E402
from rasa.shared.core.constants import SHOULD_NOT_BE_SET  # noqa: E402

from bench.utterances import conversations  # noqa: E402
from bot import rule_matching  # noqa: E402
from tests.unit.bot.conversation_agent import conversation_agent, talk  # noqa: E402
from tests.unit.bot.patching import restored  # noqa: E402

RASAS = RulePolicy._get_possible_keys


@pytest.fixture()
def restore_rule_policy() -> Iterator[None]:
    with restored(RulePolicy, "_get_possible_keys", rule_matching._ORIGINAL):
        yield


def rasas_keys(lookup: dict[str, Any], states: list[dict[str, Any]]) -> list[str]:
    policy = RulePolicy.__new__(RulePolicy)  # the search reads no instance state
    return list(RASAS(policy, lookup, states))


VALUES = st.sampled_from(["a", "b", SHOULD_NOT_BE_SET, "", ("a",), ("a", "b"), (1.0,), 0.0])
SUB_STATE = st.dictionaries(st.sampled_from(["action_name", "intent", "k1", "k2", "name"]),
                            VALUES, max_size=3)
STATE = st.dictionaries(st.sampled_from(["prev_action", "user", "slots", "active_loop"]),
                        SUB_STATE, max_size=4)


def as_key(states: list[dict[str, Any]]) -> str:
    return json.dumps(states)  # what Rasa stores: tuples become lists


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(STATE, min_size=1, max_size=4), max_size=12),
       st.lists(STATE, max_size=6))
def test_random_rules_and_states(rules: list[list[dict[str, Any]]],
                                 states: list[dict[str, Any]]) -> None:
    lookup = {as_key(rule): f"action_{i}" for i, rule in enumerate(rules)}
    expected = rasas_keys(lookup, copy.deepcopy(states))
    assert list(rule_matching.possible_keys(lookup, states)) == expected


def test_a_lookup_changed_in_place_is_indexed_again() -> None:
    listen = {"prev_action": {"action_name": "action_listen"}, "user": {"intent": "greet"}}
    lookup = {as_key([listen]): "utter_greet"}
    states = [{"prev_action": {"action_name": "action_listen"}, "user": {"intent": "greet"}}]
    assert list(rule_matching.possible_keys(lookup, states)) == rasas_keys(lookup, states)
    del lookup[as_key([listen])]
    other = {"prev_action": {"action_name": "action_listen"}, "user": {"intent": "bye"}}
    lookup[as_key([other])] = "utter_bye"
    states[0]["user"]["intent"] = "bye"
    assert list(rule_matching.possible_keys(lookup, states)) == rasas_keys(lookup, states) == [
        as_key([other])]


def test_the_index_leaves_few_rules_to_test_in_real_lookups(
        trained_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the index: most of the model's rules are filed under one action."""
    from rasa.core.policies.rule_policy import RULES

    agent = conversation_agent(trained_model, tmp_path, monkeypatch)
    policy = next(node._component for node in
                  agent.processor.graph_runner._instantiated_nodes.values()
                  if isinstance(getattr(node, "_component", None), RulePolicy))
    lookup = policy.lookup[RULES]
    index = rule_matching._index_of(lookup)
    listen = index.candidates({"action_name": "action_listen"})
    assert listen is not None and len(lookup) > 50
    assert len(index.unfiled) < len(lookup) / 4 and len(listen) < len(lookup) / 2


def test_should_not_be_set_and_list_values() -> None:
    rule = [{"prev_action": {"action_name": "action_listen"},
             "user": {"intent": "greet", "entities": ["amount"]},
             "slots": {"product": SHOULD_NOT_BE_SET}}]
    lookup = {as_key(rule): "utter_greet"}
    listen = {"action_name": "action_listen"}
    cases = [
        [{"prev_action": listen, "user": {"intent": "greet", "entities": ("amount",)}}],
        [{"prev_action": listen, "user": {"intent": "greet", "entities": ("amount",)},
          "slots": {"product": (1.0,)}}],
        [{"prev_action": listen, "user": {"intent": "greet", "entities": ("term",)}}],
        [{"prev_action": listen, "user": {"intent": "greet", "entities": ("amount",)},
          "slots": {"product": SHOULD_NOT_BE_SET}}],
    ]
    found = [list(rule_matching.possible_keys(lookup, states)) for states in cases]
    assert found == [rasas_keys(lookup, states) for states in cases]
    assert [bool(keys) for keys in found] == [True, False, False, True]


def test_same_keys_as_rasa_in_real_conversations(
        trained_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[dict[str, Any], list[dict[str, Any]], list[str]]] = []

    def recording(self: Any, lookup: dict[str, Any], states: list[dict[str, Any]]) -> Any:
        found = RASAS(self, lookup, states)
        calls.append((lookup, copy.deepcopy(states), list(found)))
        return found

    monkeypatch.setattr(RulePolicy, "_get_possible_keys", recording)
    agent = conversation_agent(trained_model, tmp_path, monkeypatch)
    talk(agent, [c.turns for c in itertools.islice(conversations(3), 40)], "rules")
    assert len(calls) > 200
    assert sum(1 for *_, found in calls if found) > 100
    assert any(len(found) > 1 for *_, found in calls)  # several rules apply at once
    for lookup, states, found in calls:
        assert list(rule_matching.possible_keys(lookup, states)) == found


def test_a_subclass_with_its_own_matching_keeps_rasas_search(
        restore_rule_policy: None) -> None:
    seen: list[int] = []

    class Stricter(RulePolicy):
        def _is_rule_applicable(self, rule_key: str, turn_index: int,
                                conversation_state: Any) -> bool:
            seen.append(turn_index)
            return False

    rule_matching.install()
    rule_matching.install()  # twice is once
    assert RulePolicy.__dict__[rule_matching._ORIGINAL] is RASAS
    lookup = {as_key([{"prev_action": {"action_name": "action_listen"}}]): "utter_x"}
    states: list[dict[str, Any]] = [{"prev_action": {"action_name": "action_listen"}}]
    assert Stricter.__new__(Stricter)._get_possible_keys(lookup, states) == set()
    assert seen == [0]
    policy = RulePolicy.__new__(RulePolicy)
    assert policy._get_possible_keys(lookup, states) == set(lookup)


def test_parsed_rules_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rule_matching, "MAX_PARSED", 3)
    monkeypatch.setattr(rule_matching, "_parsed", {})
    listen = {"prev_action": {"action_name": "action_listen"}}
    lookup = {as_key([listen, {**listen, "user": {"intent": f"i{n}"}}]): "x" for n in range(5)}
    states = [listen, {**listen, "user": {"intent": "i2"}}]
    found = list(rule_matching.possible_keys(lookup, states))
    assert found == rasas_keys(lookup, states) and len(found) == 1
    assert 0 < len(rule_matching._parsed) <= 3
