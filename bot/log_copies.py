"""Rasa's snapshots for its debug log, made only when its debug log is on.

Rasa 3.6 hands `copy.deepcopy(...)` of the turn's events, parse data, slot values and
policy states to `structlogger.debug(...)` in its message processor, its memoization and rule
policies and its forms. Python evaluates the arguments before the call, so every turn makes
those deep copies (≈ 200 `deepcopy` calls a turn, ≈ 4 % of a tuned turn's profile;
docs/benchmarks.md, session 16) even when the debug level is filtered out and the call itself
returns at once: structlog's filtering bound logger, which `rasa run` configures, makes
`debug` a function that does nothing. The copies only keep the log's processors (an
anonymiser) off the live objects. `MessageProcessor._log_slots` likewise joins every slot into
a string whose one use is a debug event.

The patch gives each of those four modules a `copy` of its own: `deepcopy` hands its argument
back untouched while that module's own logger drops debug events, and is the real
`copy.deepcopy` otherwise (`rasa run --debug`, `LOG_LEVEL=DEBUG`, structlog left unconfigured,
a wrapper class that decides per call); every other attribute is the real `copy` module's.
`_log_slots` returns at once on the same condition. In these modules every use of `copy` is
such a debug argument (a test reads their source to hold that for the pinned Rasa).
"""

from __future__ import annotations

import copy
import importlib
import logging
from types import ModuleType
from typing import Any

MODULES = ("rasa.core.processor", "rasa.core.policies.memoization",
           "rasa.core.policies.rule_policy", "rasa.core.actions.forms")
_ORIGINAL = "_loanbot_log_slots"


def _nop_debug() -> Any:
    """The function structlog's filtering loggers have for a level they drop."""
    import structlog

    return structlog.make_filtering_bound_logger(logging.CRITICAL).debug  # cached by structlog


def debug_dropped(logger: Any) -> bool:
    """True when this (lazy) structlog logger's `debug` is the do-nothing function.

    Asked of the logger itself, not of the global configuration: a module's logger keeps the
    wrapper class it was first used with."""
    try:
        bound = logger.bind()
    except Exception:  # noqa: BLE001 - anything unexpected: keep Rasa's copies
        return False
    return getattr(type(bound), "debug", None) is _nop_debug()


class LogCopies:
    """Stands for the `copy` module inside one Rasa module (whose `structlogger` it asks)."""

    def __init__(self, module: ModuleType) -> None:
        self._module = module

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if debug_dropped(self._module.structlogger):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def install() -> None:
    from rasa.core.processor import MessageProcessor

    for name in MODULES:
        module = importlib.import_module(name)
        if not isinstance(module.__dict__.get("copy"), LogCopies):
            module.copy = LogCopies(module)  # type: ignore[attr-defined]
    if _ORIGINAL in MessageProcessor.__dict__:
        return
    original = MessageProcessor.__dict__["_log_slots"].__func__
    processor = importlib.import_module("rasa.core.processor")

    def _log_slots(tracker: Any) -> None:
        if debug_dropped(processor.structlogger):
            return
        original(tracker)

    setattr(MessageProcessor, _ORIGINAL, staticmethod(original))
    MessageProcessor._log_slots = staticmethod(_log_slots)
