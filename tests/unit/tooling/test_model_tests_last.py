"""tests/conftest.py runs every test that needs the model after all that do not, so a stale
model trains in the background beside the first ones (tests/background_training.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tests import conftest


class FakeItem:
    def __init__(self, name: str, fixtures: tuple[str, ...] = (), marked: bool = False) -> None:
        self.name = name
        self.fixturenames = fixtures
        self.markers = {"needs_model"} if marked else set()

    def add_marker(self, marker: Any) -> None:
        self.markers.add(marker.name)

    def get_closest_marker(self, name: str) -> object | None:
        return object() if name in self.markers else None


def test_tests_needing_the_model_run_last_in_their_own_order() -> None:
    items: list[Any] = [
        FakeItem("a"), FakeItem("story", marked=True), FakeItem("b"),
        FakeItem("diet", fixtures=("tmp_path", "trained_model")), FakeItem("c"),
        FakeItem("deploy", marked=True),
    ]
    config: Any = SimpleNamespace(option=SimpleNamespace(collectonly=True))
    for item in items:
        conftest.pytest_itemcollected(item)
    conftest.pytest_collection_modifyitems(config, items)
    assert [item.name for item in items] == ["a", "b", "c", "story", "diet", "deploy"]
    assert all(conftest.needs_model(item) for item in items[3:])


def test_collecting_only_starts_no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[object] = []
    monkeypatch.setattr(conftest.BackgroundTraining, "start_if_stale",
                        classmethod(lambda cls, *a, **k: started.append(a)))
    config: Any = SimpleNamespace(option=SimpleNamespace(collectonly=True), stash={})
    item: Any = FakeItem("diet", ("trained_model",))
    conftest.pytest_itemcollected(item)
    conftest.pytest_collection_modifyitems(config, [item])
    assert started == []


def test_no_training_when_no_selected_test_needs_the_model(
        monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[object] = []
    monkeypatch.setattr(conftest.BackgroundTraining, "start_if_stale",
                        classmethod(lambda cls, *a, **k: started.append(a)))
    config: Any = SimpleNamespace(option=SimpleNamespace(collectonly=False), stash={})
    conftest.pytest_collection_modifyitems(config, [FakeItem("a"), FakeItem("b")])
    assert started == []
    conftest.pytest_collection_modifyitems(config, [FakeItem("a"), FakeItem("m", marked=True)])
    assert len(started) == 1
