"""A slot's shallow copy made directly instead of through `copy.copy`'s generic reduce path.

Every `DialogueStateTracker` Rasa 3.6 creates copies each of the domain's slots with
`copy.copy`, and Rasa creates one for every past-states computation (each policy, each
prediction) and every `tracker.copy()`: ≈ 130 slot copies per turn of this assistant, ≈ 6 %
of a tuned Rasa's profiled time (docs/benchmarks.md, session 12). For an ordinary object
`copy.copy` asks `__reduce_ex__(4)` for `(copyreg.__newobj__, (cls,), obj.__dict__)` and
rebuilds the object from it: `cls.__new__(cls)`, then the new object's `__dict__` updated from
the old one's. `Slot.__copy__` does exactly that, directly. A slot class that could make the
generic path do anything else (its own `__reduce_ex__`, `__reduce__`, `__getstate__`,
`__setstate__`, `__getnewargs__` or named `__slots__`, or an entry in `copyreg.dispatch_table`)
goes through the generic path unchanged.
"""

from __future__ import annotations

import copy
import copyreg
from typing import Any

_MARK = "_loanbot_direct_copy"
_plain: dict[type, bool] = {}


def _is_plain(cls: type) -> bool:
    """Whether `copy.copy`'s generic path would rebuild an instance from its `__dict__`."""
    if cls in copyreg.dispatch_table:
        return False
    for name in ("__reduce_ex__", "__reduce__", "__getstate__", "__setstate__",
                 "__getnewargs_ex__", "__getnewargs__"):
        if getattr(cls, name, None) is not getattr(object, name, None):
            return False
    # named slots would join the state (an empty `__slots__`, as ABC's, adds none)
    return not copyreg._slotnames(cls)  # type: ignore[attr-defined]


def generic_copy(obj: Any) -> Any:
    """What `copy.copy(obj)` does for an object without `__copy__` (its reduce path)."""
    cls = type(obj)
    reductor = copyreg.dispatch_table.get(cls)
    rv = reductor(obj) if reductor is not None else obj.__reduce_ex__(4)
    if isinstance(rv, str):
        return obj
    return copy._reconstruct(obj, None, *rv)  # type: ignore[attr-defined]


def direct_copy(self: Any) -> Any:
    """`copy.copy` of a slot: a new instance of its class holding the same attributes."""
    cls: Any = type(self)
    plain = _plain.get(cls)
    if plain is None:
        plain = _plain[cls] = _is_plain(cls)
    if not plain:
        return generic_copy(self)
    new = cls.__new__(cls)
    new.__dict__.update(self.__dict__)
    return new


def install() -> None:
    from rasa.shared.core.slots import Slot

    if getattr(Slot, _MARK, False) or "__copy__" in Slot.__dict__:
        return
    Slot.__copy__ = direct_copy
    setattr(Slot, _MARK, True)
