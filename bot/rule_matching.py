"""RulePolicy's search for the rules that apply to a conversation, without a function call
and a JSON-list reversal per rule per turn.

Rasa 3.6's `RulePolicy._get_possible_keys` narrows the set of rule keys one conversation turn
at a time (newest first), calling `_is_rule_applicable` for every key still in the set. That
call fetches the rule's states from an `lru_cache` of `json.loads`, reverses them into a new
list, and hands each state to `_does_rule_match_state`, which turns every list value back
into a tuple. A prediction asks this 70–300 times, and a turn makes two or three predictions:
≈ 5 % of a tuned Rasa's CPU per turn (docs/benchmarks.md, session 12).

`possible_keys` computes the same thing with each rule's states parsed, reversed and
converted once per key text, and the newest turn (where every rule is tested) narrowed first by
an index of the rules by their newest previous action (most rules need one particular action
to have just run). The same chain of `set(filter(...))` over the previous set, so even the
resulting set's iteration order (which decides between rules of equal length in
`max(rule_keys, key=len)`) is Rasa's. A subclass
that overrides any of the three methods keeps Rasa's own code.
"""

from __future__ import annotations

import json
from typing import Any

from rasa.shared.core.constants import PREVIOUS_ACTION as _PREVIOUS_ACTION
from rasa.shared.core.constants import SHOULD_NOT_BE_SET as _SHOULD_NOT_BE_SET

_ORIGINAL = "_loanbot_original_get_possible_keys"

# rule key text -> its states newest first, list values as tuples (keys are never mutated);
# a model has hundreds of rules, and the bound keeps replaced models' rules from piling up
_parsed: dict[str, tuple[tuple[dict[str, Any], ...], tuple[Any, ...]]] = {}
MAX_PARSED = 20_000


def _parse(rule_key: str) -> tuple[tuple[dict[str, Any], ...], tuple[Any, ...]]:
    """The rule's states newest first, each with its previous action looked up once."""
    states = []
    for state in reversed(json.loads(rule_key)):
        states.append({
            state_type: {key: tuple(value) if isinstance(value, list) else value
                         for key, value in sub_state.items()}
            for state_type, sub_state in state.items()
        })
    parsed = (tuple(states), tuple(state.get(_PREVIOUS_ACTION) for state in states))
    if len(_parsed) >= MAX_PARSED:
        _parsed.clear()
    _parsed[rule_key] = parsed
    return parsed


def _matches(rule_state: dict[str, Any], conversation_state: dict[str, Any]) -> bool:
    """`RulePolicy._does_rule_match_state` with list values already tuples."""
    for state_type, rule_sub_state in rule_state.items():
        conversation_sub_state = conversation_state.get(state_type, {})
        for key, value_from_rules in rule_sub_state.items():
            value_from_conversation = conversation_sub_state.get(key)
            if (
                value_from_rules
                and value_from_rules != _SHOULD_NOT_BE_SET
                and value_from_conversation != value_from_rules
            ) or (
                value_from_rules == _SHOULD_NOT_BE_SET
                and value_from_conversation
                and value_from_conversation != _SHOULD_NOT_BE_SET
            ):
                return False
    return True


def _applies(rule_key: str, turn_index: int, state: dict[str, Any],
             current_previous_action: Any) -> bool:
    """`RulePolicy._is_rule_applicable` with the rule parsed once."""
    rule = _parsed.get(rule_key) or _parse(rule_key)
    rule_states, previous_actions = rule
    if turn_index >= len(rule_states):
        return True
    rule_previous_action = previous_actions[turn_index]
    if not rule_previous_action and not current_previous_action:
        return True
    if not rule_previous_action or not current_previous_action:
        return False
    return _matches(rule_states[turn_index], state)


class _NewestTurnIndex:
    """The keys of one lookup by what their newest state requires of the conversation's
    previous action: a rule whose newest previous action has a feature `name: value` (set, and
    not "should not be set") applies to a conversation only if the conversation's previous
    action has that same feature, so only the rules filed under the conversation's own
    features, and those filed under none, need the full test."""

    def __init__(self, keys: frozenset[str]) -> None:
        self.keys = keys
        self.filed: dict[tuple[str, Any], list[str]] = {}
        self.unfiled: list[str] = []
        for rule_key in keys:
            rule_states, previous_actions = _parsed.get(rule_key) or _parse(rule_key)
            feature = _required_feature(previous_actions[0]) if rule_states else None
            if feature is None:
                self.unfiled.append(rule_key)
            else:
                self.filed.setdefault(feature, []).append(rule_key)
        self.names = sorted({name for name, _ in self.filed})

    def candidates(self, previous_action: Any) -> list[str] | None:
        """The keys that may apply to a newest state with this previous action (a superset of
        those that do), or None if the previous action's values cannot be looked up."""
        found = list(self.unfiled)
        if not previous_action:
            return found  # every filed rule needs a previous action
        if not isinstance(previous_action, dict):
            return None
        for name in self.names:
            value = previous_action.get(name)
            try:
                found.extend(self.filed.get((name, value), ()))
            except TypeError:  # an unhashable value: no shortcut
                return None
        return found


def _required_feature(previous_action: Any) -> tuple[str, Any] | None:
    """A `name: value` the conversation's previous action must have for the rule to apply."""
    if not previous_action or not isinstance(previous_action, dict):
        return None
    for name, value in previous_action.items():
        if value and value != _SHOULD_NOT_BE_SET:
            try:
                hash(value)
            except TypeError:
                continue
            return name, value
    return None


# lookup id -> (the lookup, its index); the lookup is kept so that its id cannot be reused
_indexes: dict[int, tuple[dict[str, Any], _NewestTurnIndex]] = {}
MAX_INDEXES = 16


def _index_of(lookup: dict[str, Any]) -> _NewestTurnIndex:
    kept = _indexes.get(id(lookup))
    if kept is not None and kept[0] is lookup and kept[1].keys == lookup.keys():
        return kept[1]
    if len(_indexes) >= MAX_INDEXES:
        _indexes.clear()
    index = _NewestTurnIndex(frozenset(lookup))
    _indexes[id(lookup)] = (lookup, index)
    return index


def possible_keys(lookup: dict[str, Any], states: list[dict[str, Any]]) -> set[str]:
    """The keys of `lookup` whose rule applies to `states` (Rasa's `_get_possible_keys`).

    The newest turn's test, which every rule goes through, runs only on the rules the index
    leaves; the set is still made by filtering `set(lookup.keys())` in its own order, as Rasa
    does, so it is the same set built the same way."""
    keys = set(lookup.keys())
    for turn_index, state in enumerate(reversed(states)):
        current_previous_action = state.get(_PREVIOUS_ACTION)
        candidates = (_index_of(lookup).candidates(current_previous_action)
                      if turn_index == 0 else None)
        if candidates is not None:
            passing = {rule_key for rule_key in candidates
                       if _applies(rule_key, 0, state, current_previous_action)}
            keys = set(filter(passing.__contains__, keys))
            continue

        def applies(rule_key: str, turn_index: int = turn_index, state: Any = state,
                    current_previous_action: Any = current_previous_action) -> bool:
            return _applies(rule_key, turn_index, state, current_previous_action)

        keys = set(filter(applies, keys))
    return keys


def install() -> None:
    from rasa.core.policies.rule_policy import RulePolicy

    if hasattr(RulePolicy, _ORIGINAL):
        return
    original = RulePolicy._get_possible_keys
    own = (RulePolicy._is_rule_applicable, RulePolicy.__dict__["_does_rule_match_state"],
           RulePolicy.__dict__["_rule_key_to_state"])

    def _get_possible_keys(self: Any, lookup: dict[str, Any],
                           states: list[dict[str, Any]]) -> set[str]:
        cls = type(self)
        if (cls._is_rule_applicable, _class_attr(cls, "_does_rule_match_state"),
                _class_attr(cls, "_rule_key_to_state")) != own:
            return original(self, lookup, states)
        return possible_keys(lookup, states)

    setattr(RulePolicy, _ORIGINAL, original)
    RulePolicy._get_possible_keys = _get_possible_keys


def _class_attr(cls: type, name: str) -> Any:
    """The attribute as the class defines it (a staticmethod object, not its function)."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return None
