"""bot/log_copies.py: Rasa's deep copies for its debug log are made only when that log is on,
and what Rasa logs at debug is unchanged."""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
import itertools
import logging
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip("rasa")

import structlog  # noqa: E402
from rasa.core.processor import MessageProcessor  # noqa: E402
from structlog.testing import LogCapture  # noqa: E402

from bench.utterances import conversations  # noqa: E402
from bot import log_copies  # noqa: E402
from tests.stack import seed_loan_db  # noqa: E402
from tests.unit.bot.conversation_agent import conversation_agent, talk  # noqa: E402
from tests.unit.bot.patching import restored  # noqa: E402


def modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in log_copies.MODULES]


@pytest.fixture()
def patched(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    saved = structlog.get_config()
    for module in modules():
        monkeypatch.setattr(module, "copy", module.copy)
        monkeypatch.setattr(module, "structlogger", module.structlogger)
    with restored(MessageProcessor, "_log_slots", log_copies._ORIGINAL):
        log_copies.install()
        log_copies.install()  # twice is once
        yield
    structlog.configure(**saved)


def logging_at(level: int | None, capture: LogCapture | None = None) -> None:
    """structlog as `rasa run` configures it at `level` (None: structlog's defaults), with a
    fresh logger in every patched module (a module's logger keeps the class it first used)."""
    structlog.reset_defaults()
    if level is not None:
        structlog.configure(processors=[capture or LogCapture()],
                            wrapper_class=structlog.make_filtering_bound_logger(level),
                            cache_logger_on_first_use=True)
    for module in modules():
        module.structlogger = structlog.get_logger()  # type: ignore[attr-defined]


class Slot:
    def __init__(self, name: str, value: Any) -> None:
        self.name, self.value = name, value


class Tracker:
    def __init__(self, **slots: Any) -> None:
        self._slots = {name: Slot(name, value) for name, value in slots.items()}
        self.read = 0

    @property
    def slots(self) -> dict[str, Slot]:
        self.read += 1
        return self._slots


def test_every_use_of_copy_in_those_modules_is_an_argument_of_a_debug_log() -> None:
    debug_arguments = 0
    for module in modules():
        tree = ast.parse(Path(inspect.getfile(module)).read_text())
        in_debug: set[int] = set()
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "debug"
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "structlogger"):
                for keyword in node.keywords:
                    value = keyword.value
                    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
                        in_debug.add(id(value.func))
        uses = [node for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name) and node.value.id == "copy"]
        assert uses, module.__name__
        for use in uses:
            assert use.attr == "deepcopy" and id(use) in in_debug, (module.__name__, use.lineno)
        debug_arguments += len(uses)
    assert debug_arguments == 13  # Rasa 3.6.21's; another release is audited again


def test_the_slot_listing_is_only_logged() -> None:
    original = MessageProcessor.__dict__.get(log_copies._ORIGINAL,
                                             MessageProcessor.__dict__["_log_slots"]).__func__
    tree = ast.parse(inspect.cleandoc(inspect.getsource(original)))
    called = {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert called == {"'\\n'.join", "tracker.slots.values", "slot_values.strip",
                      "structlogger.debug", "copy.deepcopy"}


def test_with_debug_off_nothing_is_copied_or_listed(patched: None) -> None:
    capture = LogCapture()
    logging_at(logging.INFO, capture)
    value = {"events": [{"event": "slot", "value": [1, 2]}]}
    for module in modules():
        assert module.copy.deepcopy(value) is value
        assert module.copy.copy is copy.copy  # the rest is the real module
    tracker = Tracker(amount=50000)
    MessageProcessor._log_slots(tracker)
    assert tracker.read == 0
    assert capture.entries == []


@pytest.mark.parametrize("level", [logging.DEBUG, None], ids=["debug", "unconfigured"])
def test_with_debug_on_the_log_gets_its_copies(patched: None, level: int | None) -> None:
    capture = LogCapture()
    logging_at(level, capture)
    value = {"events": [{"event": "slot", "value": [1, 2]}]}
    for module in modules():
        copied = module.copy.deepcopy(value)
        assert copied == value and copied is not value
        assert copied["events"][0]["value"] is not value["events"][0]["value"]
    if level is None:
        return  # structlog's default logger prints; the copies are what is checked
    tracker = Tracker(amount=50000, term=None)
    MessageProcessor._log_slots(tracker)
    assert tracker.read == 1
    assert capture.entries == [{"event": "processor.slots.log", "log_level": "debug",
                                "slot_values": "\tamount: 50000\n\tterm: None"}]


def test_a_wrapper_that_decides_per_call_keeps_the_copies(patched: None) -> None:
    structlog.reset_defaults()
    structlog.configure(processors=[LogCapture()], wrapper_class=structlog.stdlib.BoundLogger,
                        logger_factory=structlog.stdlib.LoggerFactory())
    for module in modules():
        module.structlogger = structlog.get_logger()  # type: ignore[attr-defined]
    value = [{"a": [1]}]
    for module in modules():
        assert module.copy.deepcopy(value) is not value


def test_real_turns_copy_nothing_with_debug_off_and_answer_alike(
        trained_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        patched: None) -> None:
    made: list[Any] = []

    class Counting:
        def deepcopy(self, value: Any, memo: Any = None) -> Any:
            made.append(value)
            return copy.deepcopy(value, memo)

        def __getattr__(self, name: str) -> Any:
            return getattr(copy, name)

    monkeypatch.setattr(log_copies, "copy", Counting())
    turns = [c.turns for c in itertools.islice(conversations(31), 8)]
    agent = conversation_agent(trained_model, tmp_path / "db", monkeypatch)
    logging_at(logging.DEBUG)
    with_debug = talk(agent, turns, "debug")
    assert len(made) > 50  # Rasa's own copies, made for its debug log

    made.clear()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    monkeypatch.setenv("LOAN_DB_URL", seed_loan_db(fresh))  # a fresh store: same answers
    logging_at(logging.INFO)
    without = talk(agent, turns, "info")
    assert made == []
    assert [strip(o) for o in without] == [strip(o) for o in with_debug]


def strip(out: Any) -> Any:
    if isinstance(out, list):
        return [{k: v for k, v in m.items() if k != "recipient_id"} for m in out]
    return out
