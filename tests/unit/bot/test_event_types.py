"""bot/event_types.py: an event's class by its type name is the class Rasa's walk of the
subclasses finds, and what that walk refuses is refused alike, also after subclasses come and
go."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("rasa")

from rasa.shared.core.events import ActionExecuted, Event, Restarted, SlotSet  # noqa: E402
from rasa.shared.utils.common import all_subclasses  # noqa: E402

from bot import event_types  # noqa: E402
from tests.unit.bot.patching import all_restored  # noqa: E402

RASAS = Event.__dict__["resolve_by_type"].__func__  # Rasa's own, before any install


@pytest.fixture()
def patched() -> Iterator[None]:
    with all_restored((Event, "resolve_by_type", event_types._ORIGINAL),
                      (Event, "__init_subclass__", None)):
        event_types.install()
        event_types.install()  # twice is once
        yield
    gc.collect()  # classes the tests defined go with them
    event_types.forget()


def outcome(resolve: Any, name: Any, default: Any = None) -> Any:
    try:
        return resolve(name, default)
    except Exception as exc:  # noqa: BLE001 - the refusal itself is compared
        return type(exc), str(exc)


def names() -> list[Any]:
    known = sorted({cls.type_name for cls in all_subclasses(Event)})
    return known + ["topic", "no_such_event", "", "SLOT", None, 7, ["slot"]]


def test_every_name_gives_rasas_class_or_rasas_refusal(patched: None) -> None:
    assert Event.resolve_by_type is not RASAS
    for default in (None, ActionExecuted):
        for name in names():
            if isinstance(name, list) and default is None:
                continue  # unhashable: Rasa's walk compares it and raises ValueError
            assert outcome(Event.resolve_by_type, name, default) == outcome(RASAS, name, default)
    assert Event.resolve_by_type("slot") is SlotSet
    assert Event.from_parameters({"event": "slot", "name": "a", "value": 1}) == SlotSet("a", 1)


def defined_later() -> dict[str, type]:
    class Later(SlotSet):
        type_name = "loanbot_later"

    class Shadow(Event):
        """A direct subclass named like a grandchild (`Restarted`, below a mixin): Rasa's
        walk lists every direct subclass before any grandchild, so this one now wins."""

        type_name = "restart"

        def __eq__(self, other: Any) -> bool:
            return self is other

        def __hash__(self) -> int:
            return id(self)

        def as_story_string(self) -> str:
            return ""

    return {"Later": Later, "Shadow": Shadow}


def test_a_subclass_defined_later_is_seen(patched: None) -> None:
    assert Event.resolve_by_type("restart") is Restarted  # the table is built now
    assert outcome(Event.resolve_by_type, "loanbot_later") == outcome(RASAS, "loanbot_later")
    classes = defined_later()
    try:
        assert Event.resolve_by_type("loanbot_later") is classes["Later"]
        assert RASAS("restart") is classes["Shadow"]
        assert Event.resolve_by_type("restart") is classes["Shadow"]
    finally:
        classes.clear()
        gc.collect()
    # gone again, for every later test
    assert Event.resolve_by_type("restart") is Restarted is RASAS("restart")


def test_a_collected_or_renamed_class_is_not_returned(patched: None) -> None:
    def define() -> None:
        class Passing(SlotSet):
            type_name = "loanbot_passing"

        assert Event.resolve_by_type("loanbot_passing") is Passing  # now in the table

    define()
    gc.collect()
    assert outcome(Event.resolve_by_type, "loanbot_passing") == \
        outcome(RASAS, "loanbot_passing")

    class Renamed(SlotSet):
        type_name = "loanbot_before"

    assert Event.resolve_by_type("loanbot_before") is Renamed
    Renamed.type_name = "loanbot_after"
    try:
        assert outcome(Event.resolve_by_type, "loanbot_before") == \
            outcome(RASAS, "loanbot_before")
        assert Event.resolve_by_type("loanbot_after") is Renamed is RASAS("loanbot_after")
    finally:
        Renamed.type_name = "loanbot_before"
