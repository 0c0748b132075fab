"""A conversation's applied events continued from the last call instead of refolded from its
first event.

Rasa 3.6's `DialogueStateTracker.applied_events` walks every event of the conversation on
every call (≈ 7 times a turn: each past-states computation, the session check, the action
call's state): it collects the loop names of all events, then folds the events into the list
of those not reverted, with several `isinstance` checks against Rasa's abstract event classes
per event. On the benchmark's short conversations that is ≈ 3 % of a turn; in a long one it
dominates: 36 % of a turn after 120–160 turns of one conversation (docs/benchmarks.md,
session 15), where each turn costs ≈ 4× a first turn's.

Here the same fold, Rasa's loop body, is kept per tracker: the next call goes on with the new
events only, when

- the tracker's events still begin with the very events (the same objects, in order) folded
  before, and
- the new events name no loop the folded ones did not: Rasa decides whether an
  `ActionExecuted` is a loop's by the loop names of *all* events, so a new loop name can change
  the fate of events folded before it. Then, as on any other change (a cleared or trimmed
  history), the fold starts afresh from the first event.

Every call returns a new list, as Rasa's does. A tracker of another class keeps Rasa's method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from bot.per_tracker import PerTracker, continues

_ORIGINAL = "_loanbot_original_applied_events"


@dataclass
class _Fold:
    consumed: list[Any] = field(default_factory=list)  # the tracker's events folded so far
    applied: list[Any] = field(default_factory=list)
    loop_names: set[str] = field(default_factory=set)


_folds: PerTracker[_Fold] = PerTracker()  # each tracker's fold


def _loop_names(events: Any) -> set[str]:
    from rasa.shared.core.events import ActiveLoop

    return {event.name for event in events if isinstance(event, ActiveLoop) and event.name}


def _step(tracker: Any, event: Any, applied: list[Any], loop_names: set[str]) -> list[Any]:
    """One event of Rasa's fold (`DialogueStateTracker.applied_events`), line for line."""
    from rasa.shared.core.events import (
        ActionExecuted,
        ActionReverted,
        Restarted,
        SessionStarted,
        UserUtteranceReverted,
        UserUttered,
    )

    if isinstance(event, (Restarted, SessionStarted)):
        return []
    if isinstance(event, ActionReverted):
        tracker._undo_till_previous(ActionExecuted, applied)
    elif isinstance(event, UserUtteranceReverted):
        tracker._undo_till_previous(UserUttered, applied)
        tracker._undo_till_previous(ActionExecuted, applied)
    elif (
        isinstance(event, ActionExecuted)
        and event.action_name in loop_names
        and not tracker._first_loop_execution_or_unhappy_path(event.action_name, applied)
    ):
        tracker._undo_till_previous_loop_execution(event.action_name, applied)
    else:
        applied.append(event)
    return applied


def applied_events(tracker: Any) -> list[Any]:
    """`DialogueStateTracker.applied_events`, continued from the last call on this tracker."""
    events = tracker.events
    fold = _folds.get(tracker)
    new: list[Any] | None = None
    if fold is not None and continues(fold.consumed, events):
        new = list(islice(events, len(fold.consumed), None))
        if not _loop_names(new) <= fold.loop_names:
            new = None  # a new loop name: events folded before may now count differently
    if new is None:
        new = list(events)
        fold = _folds.put(tracker, _Fold(loop_names=_loop_names(new)))
    assert fold is not None
    applied = fold.applied
    for event in new:
        applied = _step(tracker, event, applied, fold.loop_names)
    fold.applied = applied
    fold.consumed.extend(new)
    return list(applied)


def install() -> None:
    from rasa.shared.core.trackers import DialogueStateTracker

    if hasattr(DialogueStateTracker, _ORIGINAL):
        return
    original = DialogueStateTracker.applied_events

    def patched(self: Any) -> list[Any]:
        if type(self) is not DialogueStateTracker:
            return original(self)
        return applied_events(self)

    setattr(DialogueStateTracker, _ORIGINAL, original)
    DialogueStateTracker.applied_events = patched
