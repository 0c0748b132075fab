"""Fixtures shared by every test layer."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.training import ModelPaths, ensure_model
from tests.background_training import BackgroundTraining

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

ROOT = Path(__file__).resolve().parent.parent
MODELS = ModelPaths(ROOT / "models")
TRAINING = pytest.StashKey[BackgroundTraining]()
TRAINING_LOG = ROOT / "reports" / "training.log"


def needs_model(item: pytest.Item) -> bool:
    return item.get_closest_marker("needs_model") is not None


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: `-m "not needs_model"` works
def pytest_itemcollected(item: pytest.Item) -> None:
    """A test that uses the trained model is marked as needing it."""
    if "trained_model" in getattr(item, "fixturenames", ()):
        item.add_marker(pytest.mark.needs_model)


@pytest.hookimpl(trylast=True)  # after `-k`/`-m` deselected: train only for tests that run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests that need the model run after all that do not (in their own order
    otherwise); a stale model starts training now, beside the first ones."""
    items.sort(key=needs_model)  # stable
    if config.option.collectonly or not any(needs_model(item) for item in items):
        return
    training = BackgroundTraining.start_if_stale(MODELS, TRAINING_LOG)
    if training is not None:
        config.stash[TRAINING] = training
        _say(config, "==> the model is stale: training it in the background while the tests "
                     f"that do not need it run (log: {TRAINING_LOG.relative_to(ROOT)})")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """The first test that needs the model waits for its training here, before the test's
    own timeout starts (pytest-timeout times the whole protocol)."""
    training = item.config.stash.get(TRAINING, None)
    if training is not None and needs_model(item):
        with contextlib.suppress(Exception):  # a failure is reported by `trained_model`
            training.wait(lambda line: _say(item.config, line))
    yield


def pytest_sessionfinish(session: pytest.Session) -> None:
    training = session.config.stash.get(TRAINING, None)
    if training is not None:
        training.stop()


def _say(config: pytest.Config, line: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)
    else:
        print(line, flush=True)


@pytest.fixture(scope="session")
def trained_model(request: pytest.FixtureRequest) -> Path:
    """The current model, trained first if any training input changed since the last build
    (by the background training, when this run started one)."""
    training = request.config.stash.get(TRAINING, None)
    if training is not None:
        training.wait(lambda line: _say(request.config, line))
    return ensure_model(MODELS)


@pytest.fixture
async def clients() -> AsyncIterator[list[Any]]:
    """Collects the socket.io clients a test makes so they are all closed afterwards (a client
    of a killed server may already be gone)."""
    made: list[Any] = []
    yield made
    for client in made:
        with contextlib.suppress(Exception):
            await client.close()


@pytest.fixture
def made(clients: list[Any]) -> list[Any]:
    """The same list under the name the fault and scale-out tests use."""
    return clients
