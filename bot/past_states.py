"""The past states of a conversation extended from where the last computation stopped, instead
of replayed from the conversation's first event for every policy and every prediction.

Rasa 3.6's `Domain.states_for_tracker_history` (what `tracker.past_states` returns) makes a
fresh tracker, applies every event of the conversation to it one by one and folds a state out
of it before each action: work that grows with the conversation, done ≈ 4.5 times per turn
(each policy asks, with its own arguments, at each prediction of the turn). Measured in
session 13 (docs/benchmarks.md): ≈ 11 % of a tuned turn's CPU on the benchmark's short
conversations, more on longer ones.

`states_for_tracker_history` here runs the same fold, Rasa's own code for each step, but keeps
where it stopped (the replayed tracker, the states so far, the fold's two variables) per
conversation tracker and per set of arguments. The next call on the same tracker, whose
applied events still begin with the very events (the same objects) consumed before, goes on
from there with the new events only; anything else (a revert or restart that changed the
applied events, another domain, other rule-only data where it is read) starts afresh, as Rasa
does. The final state, which the next events may change, is always computed afresh and never
kept. The rule-only data is read only when rule-only turns are hidden; elsewhere it is not
part of which fold a call continues (RulePolicy passes a new dict on every call: until
session 15 each of its calls started afresh and left one more fold on the tracker, ≈ 64 MB of
folds after 160 turns of one conversation).

Consumers change the lists they get (`_choose_last_user_input` deletes keys of a state's user
sub-state, which Rasa's fold shares between consecutive states), so every call returns a copy
that shares sub-dicts exactly where Rasa's result does, and what is kept is never handed out.
A tracker or domain of another class keeps Rasa's own method.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from bot.per_tracker import PerTracker, continues

_ORIGINAL = "_loanbot_original_states_for_tracker_history"
_IMMUTABLE = (str, tuple, int, float, bool, type(None), frozenset)


@dataclass
class _Fold:
    """Rasa's fold over the prior trackers, stopped before its final state."""

    domain: Any
    rule_only_data: Any
    replay: Any  # the tracker with every consumed event applied
    consumed: list[Any] = field(default_factory=list)  # the applied events, in order
    states: list[Any] = field(default_factory=list)
    last_ml_action_sub_state: Any = None
    turn_was_hidden: bool = False


# each conversation tracker's folds, by (omit_unset_slots, ignore_rule_only_turns, id of the
# rule-only data)
_folds: PerTracker[dict[tuple[bool, bool, int], _Fold]] = PerTracker()


def _folds_of(tracker: Any) -> dict[tuple[bool, bool, int], _Fold]:
    folds = _folds.get(tracker)
    return folds if folds is not None else _folds.put(tracker, {})


def fold_key(omit_unset_slots: bool, ignore_rule_only_turns: bool,
             rule_only_data: Any) -> tuple[bool, bool, int]:
    """Which of a tracker's folds a call continues (the rule-only data by identity: the same
    object, whose content a fold was computed with, is what `_continues` checks)."""
    return (bool(omit_unset_slots), bool(ignore_rule_only_turns), id(rule_only_data))


def _visit(domain: Any, fold: _Fold, tr: Any, hide_rule_turn: bool, omit_unset_slots: bool,
           ignore_rule_only_turns: bool, rule_only_data: Any) -> None:
    """One step of `Domain.states_for_tracker_history`'s loop, Rasa's code line for line."""
    from rasa.shared.core.constants import PREVIOUS_ACTION

    if ignore_rule_only_turns:
        if not fold.turn_was_hidden:
            fold.last_ml_action_sub_state = domain._get_prev_action_sub_state(tr)
        if not tr.followup_action and tr.latest_action_name != tr.active_loop_name:
            fold.turn_was_hidden = hide_rule_turn
        if fold.turn_was_hidden:
            return
    state = domain.get_active_state(tr, omit_unset_slots=omit_unset_slots)
    if ignore_rule_only_turns:
        domain._remove_rule_only_features(state, rule_only_data)
        if fold.states:
            domain._substitute_rule_only_user_input(state, fold.states[-1])
        if fold.last_ml_action_sub_state:
            state[PREVIOUS_ACTION] = fold.last_ml_action_sub_state
    fold.states.append(domain._clean_state(state))


def _continues(fold: _Fold | None, domain: Any, rule_only_data: Any,
               applied: list[Any]) -> bool:
    if fold is None or fold.domain is not domain or fold.rule_only_data is not rule_only_data:
        return False
    return continues(fold.consumed, applied)


def handed_out(states: list[Any]) -> list[Any]:
    """A copy of the states sharing sub-dicts where they share them (what `copy.deepcopy`
    gives), made directly for Rasa's states: dicts of dicts of immutable values."""
    memo: dict[int, Any] = {}
    out = []
    for state in states:
        copied = memo.get(id(state))
        if copied is None:
            copied = {}
            for key, sub_state in state.items():
                sub = memo.get(id(sub_state))
                if sub is None:
                    if type(sub_state) is not dict or not all(
                            type(v) in _IMMUTABLE for v in sub_state.values()):
                        return copy.deepcopy(states)
                    sub = dict(sub_state)
                    memo[id(sub_state)] = sub
                copied[key] = sub
            memo[id(state)] = copied
        out.append(copied)
    return out


def states_for_tracker_history(domain: Any, tracker: Any, omit_unset_slots: bool = False,
                               ignore_rule_only_turns: bool = False,
                               rule_only_data: dict[str, Any] | None = None) -> list[Any]:
    """`Domain.states_for_tracker_history`, continued from the last call on this tracker."""
    from rasa.shared.core.events import ActionExecuted

    if not ignore_rule_only_turns:
        # Rasa's fold reads the rule-only data only to hide rule-only turns. RulePolicy, which
        # hides none, passes a new dict on every call: keyed by it, its folds never continued
        # and piled up on the tracker, one per call.
        rule_only_data = None
    key = fold_key(omit_unset_slots, ignore_rule_only_turns, rule_only_data)
    folds = _folds_of(tracker)
    applied = tracker.applied_events()
    fold = folds.get(key)
    if not _continues(fold, domain, rule_only_data, applied):
        fold = _Fold(domain, rule_only_data, tracker.init_copy())
        folds[key] = fold
    assert fold is not None
    # `generate_all_prior_trackers`: a state before each action, then one after the last event
    for event in applied[len(fold.consumed):]:
        if isinstance(event, ActionExecuted):
            _visit(domain, fold, fold.replay, event.hide_rule_turn, omit_unset_slots,
                   ignore_rule_only_turns, rule_only_data)
        fold.replay.update(event)
        fold.consumed.append(event)
    last = _Fold(domain, rule_only_data, fold.replay, fold.consumed, list(fold.states),
                 fold.last_ml_action_sub_state, fold.turn_was_hidden)
    _visit(domain, last, fold.replay, False, omit_unset_slots, ignore_rule_only_turns,
           rule_only_data)
    return handed_out(last.states)


def install() -> None:
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker

    if hasattr(Domain, _ORIGINAL):
        return
    original = Domain.states_for_tracker_history

    def patched(self: Any, tracker: Any, omit_unset_slots: bool = False,
                ignore_rule_only_turns: bool = False,
                rule_only_data: dict[str, Any] | None = None) -> list[Any]:
        if type(self) is not Domain or type(tracker) is not DialogueStateTracker:
            return original(self, tracker, omit_unset_slots, ignore_rule_only_turns,
                            rule_only_data)
        return states_for_tracker_history(self, tracker, omit_unset_slots,
                                          ignore_rule_only_turns, rule_only_data)

    setattr(Domain, _ORIGINAL, original)
    Domain.states_for_tracker_history = patched
