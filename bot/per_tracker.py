"""What a patch keeps for each live conversation tracker, and the test that a tracker's events
still continue what was computed from them.

Trackers compare by content, so they cannot be keys of a `weakref.WeakKeyDictionary`; entries
here are filed by identity, each with a weak reference to its tracker, and go when the tracker
is collected. Used by `bot.past_states` and `bot.applied_events`.
"""

from __future__ import annotations

import operator
import weakref
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class PerTracker(Generic[V]):
    """One value per live tracker (by identity); an entry goes with its tracker."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[Any], V]] = {}

    def get(self, tracker: Any) -> V | None:
        kept = self._entries.get(id(tracker))
        if kept is not None and kept[0]() is tracker:
            return kept[1]
        return None

    def put(self, tracker: Any, value: V) -> V:
        ident = id(tracker)
        entries = self._entries

        def gone(ref: weakref.ref[Any], ident: int = ident) -> None:
            entry = entries.get(ident)
            if entry is not None and entry[0] is ref:
                del entries[ident]

        entries[ident] = (weakref.ref(tracker, gone), value)
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def continues(consumed: Sequence[Any], events: Any) -> bool:
    """Whether `events` still begin with the very objects `consumed` holds, in order (not equal
    ones: an event replaced by an equal copy is a changed history too)."""
    return len(events) >= len(consumed) and all(map(operator.is_, consumed, events))
