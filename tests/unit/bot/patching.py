"""Undoing a patch of a Rasa class after a test: the attribute as the class held it before
(or none), and the patch's marker gone, so the next test installs afresh."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

_ABSENT = object()


@contextmanager
def restored(owner: type, name: str, marker: str | None = None) -> Iterator[None]:
    kept: Any = owner.__dict__.get(name, _ABSENT)
    try:
        yield
    finally:
        if kept is _ABSENT:
            if name in owner.__dict__:
                delattr(owner, name)
        else:
            setattr(owner, name, kept)
        if marker is not None and marker in owner.__dict__:
            delattr(owner, marker)


@contextmanager
def all_restored(*patches: tuple[type, str, str | None]) -> Iterator[None]:
    with ExitStack() as stack:
        for owner, name, marker in patches:
            stack.enter_context(restored(owner, name, marker))
        yield
