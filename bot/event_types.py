"""An event's class found by its type name in a table instead of by a walk of every subclass.

Rasa's `Event.resolve_by_type` walks `all_subclasses(Event)` on every call: a recursive list of
≈ 30 classes, each checked for abstractness, to find the first whose `type_name` matches. Every
event of every action response is parsed through it (`Event.from_parameters`), ≈ 1.5–2 % of a
tuned Rasa's turn (docs/benchmarks.md, session 15).

The table is that walk's result, name → the first class with that name, in the walk's order.
It is built again whenever it could differ from a fresh walk:

- a new subclass of `Event` anywhere below it is defined (an `__init_subclass__` hook on
  `Event` drops the table);
- a class in it has been garbage-collected (the table holds classes weakly, as
  `__subclasses__` does) or no longer carries the name it was filed under.

Names the table does not hold (`topic`, unknown names, with or without a default) go to Rasa's
own code, so they return and raise exactly as before.
"""

from __future__ import annotations

import weakref
from typing import Any

_ORIGINAL = "_loanbot_resolve_by_type"
_table: dict[str, weakref.ref[Any]] | None = None


def _build(event_class: Any) -> dict[str, weakref.ref[Any]]:
    from rasa.shared.utils.common import all_subclasses

    table: dict[str, weakref.ref[Any]] = {}
    for cls in all_subclasses(event_class):
        name = cls.type_name
        if isinstance(name, str) and name not in table:
            table[name] = weakref.ref(cls)
    return table


def forget() -> None:
    """Drop the table; the next lookup walks the subclasses again."""
    global _table
    _table = None


def resolve_by_type(type_name: Any, default: Any = None) -> Any:
    """`Event.resolve_by_type`, from the table where it holds the name."""
    from rasa.shared.core.events import Event

    global _table
    if type(type_name) is str:
        table = _table
        if table is None:
            table = _table = _build(Event)
        ref = table.get(type_name)
        if ref is not None:
            cls = ref()
            if cls is not None and cls.type_name == type_name:
                return cls
            _table = None  # stale: the walk below is the answer, the next call rebuilds
    return getattr(Event, _ORIGINAL)(type_name, default)


def install() -> None:
    from rasa.shared.core.events import Event

    if hasattr(Event, _ORIGINAL):
        return
    original = Event.__dict__["resolve_by_type"].__func__
    inherited = Event.__dict__.get("__init_subclass__")

    def __init_subclass__(cls: Any, **kwargs: Any) -> None:
        if inherited is not None:
            inherited.__func__(cls, **kwargs)
        else:
            super(Event, cls).__init_subclass__(**kwargs)
        forget()

    setattr(Event, _ORIGINAL, staticmethod(original))
    Event.__init_subclass__ = classmethod(__init_subclass__)
    Event.resolve_by_type = staticmethod(resolve_by_type)
    forget()
