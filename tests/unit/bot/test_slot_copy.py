"""bot/slot_copy.py: a slot's copy is what `copy.copy` makes of it without the patch: same
class, same attributes holding the same objects, independent of the original."""

from __future__ import annotations

import copy
import copyreg
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("rasa")

from rasa.shared.core.domain import Domain  # noqa: E402
from rasa.shared.core.slots import Slot, TextSlot  # noqa: E402

from bot import slot_copy  # noqa: E402
from tests.unit.bot.patching import restored  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture()
def patched() -> Iterator[None]:
    with restored(Slot, "__copy__", slot_copy._MARK):
        slot_copy.install()
        slot_copy.install()  # twice is once
        yield
    slot_copy._plain.clear()


def domain_slots() -> list[Slot]:
    slots = list(Domain.load(str(ROOT / "bot" / "domain")).slots)
    for slot in slots:  # values of every kind, as a conversation sets them
        slot.value = {"float": 3.5, "bool": True, "list": ["a"]}.get(slot.type_name, "值")
    return slots


def same_copy(made: Any, expected: Any, original: Any) -> None:
    assert type(made) is type(expected) and made is not original
    assert made.__dict__.keys() == expected.__dict__.keys()
    for name, value in expected.__dict__.items():
        assert made.__dict__[name] is value  # shallow, as copy.copy
    assert made.__dict__ is not original.__dict__


def test_every_slot_of_the_domain_copies_as_python_copies_it(patched: None) -> None:
    slots = domain_slots()
    assert {slot.type_name for slot in slots} >= {"text", "float", "bool", "list", "any"}
    for slot in slots:
        made = copy.copy(slot)
        same_copy(made, slot_copy.generic_copy(slot), slot)
        made.value = "changed"
        assert slot.value != "changed"


def test_python_copies_the_same_way_without_the_patch() -> None:
    for slot in domain_slots():
        same_copy(slot_copy.generic_copy(slot), copy.copy(slot), slot)


class Remembering(TextSlot):
    """A slot whose state is its own business."""

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "restored": True}


class WithNamedSlot(TextSlot):
    __slots__ = ("extra",)


def test_slot_classes_with_their_own_copy_rules_keep_pythons(patched: None) -> None:
    remembered = copy.copy(Remembering("s", mappings=[]))
    assert remembered.__dict__["restored"] is True
    named = WithNamedSlot("n", mappings=[])
    named.extra = 7
    assert copy.copy(named).extra == 7
    assert not slot_copy._is_plain(Remembering) and not slot_copy._is_plain(WithNamedSlot)

    class Registered(TextSlot):
        pass

    copyreg.pickle(Registered, lambda slot: (Registered, ("r", [])))
    try:
        made = copy.copy(Registered("x", mappings=[]))
        assert made.name == "r"
    finally:
        del copyreg.dispatch_table[Registered]
